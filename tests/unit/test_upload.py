"""Uploads against a scripted server: one pass per attempt, fresh body on every retry."""

from __future__ import annotations

import hashlib
import io
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import cast

import pytest
import requests
import responses

from tests.support.scripted import TOKEN, URL, SleepRecorder, file_info
from updl import (
    AuthenticationError,
    ChecksumMismatchError,
    Client,
    ConnectionFailedError,
    ProgressEvent,
    TooLargeError,
)

DATA = b"0123456789abcdef" * 40_000  # 640 kB: several encoder reads
UPLOAD = URL + "/upload"
MISMATCH = {"error": "checksum failed - please attempt reuploading", "expected": "0" * 32, "actual": "1" * 32}


def fields(request: requests.PreparedRequest) -> dict[str, bytes]:
    """The multipart fields of a recorded request."""
    body = request.body
    assert isinstance(body, bytes)
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode() + body
    )
    return {
        cast(str, part.get_param("name", header="content-disposition")): cast(bytes, part.get_payload(decode=True))
        for part in message.iter_parts()
    }


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "app.tar.gz"
    path.write_bytes(DATA)
    return path


def test_upload_sends_name_file_md5_and_auth(server: responses.RequestsMock, client: Client, source: Path) -> None:
    server.post(UPLOAD, json=file_info("app.tar.gz", DATA))
    info = client.upload(source)
    assert info.name == "app.tar.gz" and info.md5 == hashlib.md5(DATA).hexdigest()
    request = server.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["User-Agent"] == "updl/0.1.0"
    assert isinstance(request.body, bytes)
    assert int(request.headers["Content-Length"]) == len(request.body)
    sent = fields(request)
    mode = f"{source.stat().st_mode & 0o777:04o}".encode()
    assert sent.pop("mode") == mode and sent.pop("mtime").endswith(b"Z")  # the file's attributes, for downloads
    assert sent == {"name": b"app.tar.gz", "file": DATA, "md5": hashlib.md5(DATA).hexdigest().encode()}


def test_503_then_200_sends_a_fresh_complete_body(
    server: responses.RequestsMock, client: Client, source: Path, sleeps: SleepRecorder
) -> None:
    server.post(UPLOAD, status=503, json={"error": "busy"})
    server.post(UPLOAD, json=file_info("build/app", DATA))
    client.upload(source, "build/app")
    first, second = (call.request for call in server.calls)
    assert fields(first) == fields(second)
    assert fields(first)["file"] == fields(second)["file"] == DATA
    assert fields(second)["md5"] == hashlib.md5(DATA).hexdigest().encode()
    assert len(sleeps.delays) == 1


def test_409_every_time_gives_checksum_error_after_4_attempts(
    server: responses.RequestsMock, client: Client, source: Path, sleeps: SleepRecorder
) -> None:
    for _ in range(4):
        server.post(UPLOAD, status=409, json=MISMATCH)
    with pytest.raises(ChecksumMismatchError) as info:
        client.upload(source)
    assert info.value.attempts == 4 and info.value.status == 409
    assert info.value.actual == "1" * 32
    assert "checksum failed - please attempt reuploading" in str(info.value)
    assert len(sleeps.delays) == 3


def test_429_retry_after_is_honoured(
    server: responses.RequestsMock, client: Client, source: Path, sleeps: SleepRecorder
) -> None:
    server.post(UPLOAD, status=429, json={"error": "slow down"}, headers={"Retry-After": "2"})
    server.post(UPLOAD, json=file_info("app.tar.gz", DATA))
    client.upload(source)
    assert sleeps.delays == [2.0]


def test_connection_refused_every_time(
    server: responses.RequestsMock, client: Client, source: Path, sleeps: SleepRecorder
) -> None:
    for _ in range(4):
        server.post(UPLOAD, body=requests.ConnectionError("[Errno 111] Connection refused"))
    with pytest.raises(ConnectionFailedError) as info:
        client.upload(source)
    assert info.value.attempts == 4 and isinstance(info.value, ConnectionError)
    assert "connection refused" in str(info.value)
    assert isinstance(info.value.__cause__, requests.ConnectionError)


def test_401_fails_at_once(server: responses.RequestsMock, client: Client, source: Path, sleeps: SleepRecorder) -> None:
    server.post(UPLOAD, status=401, json={"error": "invalid token"})
    with pytest.raises(AuthenticationError, match="updl-server add-user NAME") as info:
        client.upload(source)
    assert info.value.attempts == 1 and sleeps.delays == []


def test_413_is_too_large(server: responses.RequestsMock, client: Client, source: Path) -> None:
    server.post(UPLOAD, status=413, json={"error": "file exceeds the server's size limit", "max_size": 1000})
    with pytest.raises(TooLargeError) as info:
        client.upload(source)
    assert info.value.max_size == 1000 and len(server.calls) == 1


def test_server_reporting_another_md5_is_a_mismatch(
    server: responses.RequestsMock, client: Client, source: Path
) -> None:
    for _ in range(4):
        server.post(UPLOAD, json=file_info("app.tar.gz", b"something else"))
    with pytest.raises(ChecksumMismatchError):
        client.upload(source)


def test_progress_is_absolute_and_restarts_on_retry(
    server: responses.RequestsMock, client: Client, source: Path
) -> None:
    server.post(UPLOAD, status=500, json={"error": "internal server error"})
    server.post(UPLOAD, json=file_info("app.tar.gz", DATA))
    events: list[ProgressEvent] = []
    client.upload(source, on_progress=events.append)
    assert events[-1] == ProgressEvent("app.tar.gz", len(DATA), len(DATA), attempt=2)
    counts = [e.transferred for e in events]
    drop = next(i for i in range(1, len(counts)) if counts[i] < counts[i - 1])
    assert counts[drop - 1] == len(DATA) and counts[drop] == 0
    assert counts[:drop] == sorted(counts[:drop]) and counts[drop:] == sorted(counts[drop:])
    assert {e.attempt for e in events[:drop]} == {1} and {e.attempt for e in events[drop:]} == {2}


def test_file_object_uploads_from_its_position_and_is_rewound(server: responses.RequestsMock, client: Client) -> None:
    server.post(UPLOAD, status=502, json={"error": "bad gateway"})
    server.post(UPLOAD, json=file_info("obj", DATA))
    stream = io.BytesIO(b"skip" + DATA)
    stream.seek(4)
    client.upload(stream, "obj")
    assert [fields(c.request)["file"] for c in server.calls] == [DATA, DATA]


def test_pipe_is_spooled_once(server: responses.RequestsMock, client: Client) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self._data = io.BytesIO(DATA)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            chunk = self._data.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    server.post(UPLOAD, status=503, json={"error": "busy"})
    server.post(UPLOAD, json=file_info("piped", DATA))
    client.upload(Pipe(), "piped")  # type: ignore[arg-type]
    assert fields(server.calls[1].request)["file"] == DATA


def test_name_is_percent_encoded_in_urls(server: responses.RequestsMock, client: Client) -> None:
    server.get(URL + "/info/build/a%20b%3F.bin", json=file_info("build/a b?.bin", DATA))
    assert client.info("build/a b?.bin").name == "build/a b?.bin"
    assert server.calls[0].request.url == URL + "/info/build/a%20b%3F.bin"


def test_missing_local_file_is_a_file_not_found(client: Client, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        client.upload(tmp_path / "nope")
