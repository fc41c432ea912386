"""Hashing wrappers and the one-pass multipart body with the md5 field last."""

from __future__ import annotations

import hashlib
import io
import os
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import pytest
from requests_toolbelt import MultipartEncoder

from updl.sdk.errors import SourceChangedError
from updl.sdk.hashing import HashingReader, HashingWriter, md5_of
from updl.sdk.uploads import DigestField as _DigestField

DATA = bytes(range(256)) * 1000


def test_reader_hashes_and_reports_absolute_positions() -> None:
    positions: list[int] = []
    source = io.BytesIO(b"xx" + DATA)
    source.seek(2)  # starts where the file object is
    reader = HashingReader(source, positions.append)
    assert len(reader) == len(DATA)
    chunks = []
    while chunk := reader.read(10_000):
        chunks.append(chunk)
    assert b"".join(chunks) == DATA
    assert reader.hexdigest() == hashlib.md5(DATA).hexdigest()
    assert positions == sorted(positions) and positions[-1] == len(DATA) == reader.bytes_read
    assert len(reader) == 0


def test_reader_stops_at_measured_length_and_detects_shrinking() -> None:
    source = io.BytesIO(DATA)
    reader = HashingReader(source)
    source.truncate(100)  # the file shrinks under us
    reader.read(100)
    with pytest.raises(SourceChangedError):
        reader.read(100)


def test_writer_hashes_and_reports() -> None:
    sink = io.BytesIO()
    positions: list[int] = []
    writer = HashingWriter(sink, positions.append)
    for i in range(0, len(DATA), 7000):
        writer.write(DATA[i : i + 7000])
    writer.close()  # hashing and writing run on worker threads: close() waits for them
    assert sink.getvalue() == DATA
    assert writer.hexdigest() == hashlib.md5(DATA).hexdigest()
    assert positions[-1] == len(DATA) == writer.bytes_written


def test_writer_surfaces_a_failed_write() -> None:
    class FullDisk(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            if self.tell() >= 20_000:
                raise OSError(28, "No space left on device")
            return super().write(data)

    writer = HashingWriter(FullDisk())
    with pytest.raises(OSError, match="No space left"):
        for i in range(0, len(DATA), 7000):
            writer.write(DATA[i : i + 7000])
        writer.close()


def test_md5_of(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(DATA * 5)
    assert md5_of(path) == hashlib.md5(DATA * 5).hexdigest()


@pytest.mark.parametrize("read_size", [1, 13, 8192, 65536])
def test_lazy_md5_field_last_makes_a_correct_body(read_size: int) -> None:
    data = DATA if read_size > 100 else DATA[:3000]  # byte-at-a-time reads are slow
    reader = HashingReader(io.BytesIO(data))
    encoder = MultipartEncoder(
        fields=[
            ("name", "dir/a b.bin"),
            ("file", ("a b.bin", reader, "application/octet-stream")),
            ("md5", _DigestField(reader)),
        ]
    )
    announced = encoder.len
    body = b""
    while chunk := encoder.read(read_size):
        body += chunk
    assert len(body) == announced  # Content-Length was right up front

    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {encoder.content_type}\r\n\r\n".encode() + body)
    parts = {
        part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
        for part in message.iter_parts()
    }
    assert parts["name"] == b"dir/a b.bin"
    assert parts["file"] == data
    assert parts["md5"] == hashlib.md5(data).hexdigest().encode()
    assert reader.bytes_read == len(data)  # read once


def test_md5_field_refuses_to_be_read_first() -> None:
    reader = HashingReader(io.BytesIO(DATA))
    with pytest.raises(RuntimeError):
        _DigestField(reader).read()


def test_reader_refuses_to_hand_out_the_last_bytes_of_a_file_rewritten_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(DATA)
    os.utime(path, ns=(10**9, 10**9))  # any later write shows, whatever the timestamp granularity
    with path.open("rb") as f:
        reader = HashingReader(f)
        first = reader.read(1000)
        path.write_bytes(bytes(b ^ 0xFF for b in DATA))  # same size, same inode
        reader.read(len(DATA) - 2000)
        with pytest.raises(SourceChangedError, match=r"changed while it was being uploaded .modified."):
            reader.read(1000)  # the last 1000 bytes never reach the body
    assert first == DATA[:1000]


def test_md5_field_checks_an_empty_file_that_has_no_last_read(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with path.open("rb") as f:
        reader = HashingReader(f)
        path.write_bytes(b"late")
        with pytest.raises(SourceChangedError, match=r"size 0 -> 4 bytes"):
            _DigestField(reader).read()


def test_a_stream_without_a_descriptor_is_taken_as_read() -> None:
    source = io.BytesIO(DATA)
    reader = HashingReader(source)
    reader.read(10)
    source.seek(0)
    source.write(b"\xff" * 10)  # nothing to stat: the bytes read are what is sent and hashed
    source.seek(10)
    assert reader.read() == DATA[10:] and reader.hexdigest() == hashlib.md5(DATA).hexdigest()
