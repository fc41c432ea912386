"""Downloads against a scripted server: verified before they appear, nothing left on failure."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import os
from pathlib import Path

import pytest
import requests
import responses

from tests.support.scripted import URL, SleepRecorder, download_headers, file_info
from updl import ChecksumMismatchError, Client, ConnectionFailedError, NotFoundError, ProgressEvent, ProtocolError
from updl.sdk.batch_download import download_batch, plan_downloads
from updl.sdk.hashing import CHUNK_SIZE
from updl.sdk.models import FileInfo

DATA = os.urandom(300_000)
FILE = URL + "/files/build/app.bin"


def serve(server: responses.RequestsMock, data: bytes, **kwargs: bytes) -> None:
    server.get(FILE, body=data, headers=download_headers(data, **kwargs))


def assert_no_litter(directory: Path, *expected: str) -> None:
    assert sorted(p.name for p in directory.iterdir()) == sorted(expected)


def test_download_lands_verified(server: responses.RequestsMock, client: Client, tmp_path: Path) -> None:
    serve(server, DATA)
    info = client.download("build/app.bin", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == DATA
    assert info.md5 == hashlib.md5(DATA).hexdigest() and info.size == len(DATA)
    assert info.created.year == 2026
    assert_no_litter(tmp_path, "out.bin")


def test_directory_destination_gets_the_base_name(
    server: responses.RequestsMock, client: Client, tmp_path: Path
) -> None:
    serve(server, DATA)
    client.download("build/app.bin", tmp_path)
    assert (tmp_path / "app.bin").read_bytes() == DATA


def test_mismatch_every_time_leaves_nothing(
    server: responses.RequestsMock, client: Client, tmp_path: Path, sleeps: SleepRecorder
) -> None:
    for _ in range(4):
        serve(server, DATA, md5_of=b"other bytes")
    with pytest.raises(ChecksumMismatchError) as info:
        client.download("build/app.bin", tmp_path / "out.bin")
    assert info.value.attempts == 4 and len(sleeps.delays) == 3
    assert info.value.actual == hashlib.md5(DATA).hexdigest()
    assert_no_litter(tmp_path)


def test_mismatch_then_good(server: responses.RequestsMock, client: Client, tmp_path: Path) -> None:
    serve(server, DATA[:-1] + bytes([DATA[-1] ^ 0xFF]), md5_of=DATA)  # corrupted in transit
    serve(server, DATA)
    client.download("build/app.bin", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == DATA
    assert_no_litter(tmp_path, "out.bin")


def test_existing_file_untouched_when_download_fails(
    server: responses.RequestsMock, client: Client, tmp_path: Path
) -> None:
    (tmp_path / "out.bin").write_bytes(b"previous")
    for _ in range(4):
        serve(server, DATA, md5_of=b"other")
    with pytest.raises(ChecksumMismatchError):
        client.download("build/app.bin", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == b"previous"
    assert_no_litter(tmp_path, "out.bin")


def test_truncated_body_is_an_error_and_leaves_nothing(
    server: responses.RequestsMock, client: Client, tmp_path: Path
) -> None:
    headers = download_headers(DATA)  # announces the full length and MD5
    for _ in range(4):
        server.get(FILE, body=DATA[:1000], headers=headers)
    with pytest.raises(ConnectionFailedError) as info:
        client.download("build/app.bin", tmp_path / "out.bin")
    assert info.value.attempts == 4
    assert_no_litter(tmp_path)


class DroppingStream(io.RawIOBase):
    """A connection that resets after ``after`` bytes of ``data``."""

    def __init__(self, data: bytes, after: int) -> None:
        self._data = io.BytesIO(data[:after])

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        if not chunk:
            raise ConnectionResetError(104, "Connection reset by peer")
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_connection_reset_mid_body_then_good(
    server: responses.RequestsMock, client: Client, tmp_path: Path, sleeps: SleepRecorder
) -> None:
    server.get(FILE, body=io.BufferedReader(DroppingStream(DATA, 5000)), headers=download_headers(DATA))
    serve(server, DATA)
    retries: list[object] = []
    client.download("build/app.bin", tmp_path / "out.bin", on_retry=retries.append)
    assert (tmp_path / "out.bin").read_bytes() == DATA
    assert len(retries) == 1 and len(sleeps.delays) == 1
    assert_no_litter(tmp_path, "out.bin")


def test_connection_refused_on_get_is_retried_by_the_one_loop(
    server: responses.RequestsMock, client: Client, tmp_path: Path, sleeps: SleepRecorder
) -> None:
    # No retries below the SDK loop: the client's 3 retries are 4 GETs, each reported.
    for _ in range(4):
        server.get(FILE, body=requests.ConnectionError("[Errno 111] Connection refused"))
    retries: list[object] = []
    with pytest.raises(ConnectionFailedError) as info:
        client.download("build/app.bin", tmp_path / "out.bin", on_retry=retries.append)
    assert info.value.attempts == 4 and len(server.calls) == 4
    assert len(retries) == len(sleeps.delays) == 3
    assert_no_litter(tmp_path)


def test_interrupt_keeps_the_part_file_for_the_next_run(
    server: responses.RequestsMock, client: Client, tmp_path: Path
) -> None:
    serve(server, DATA)
    serve(server, DATA)  # the scripted server ignores Range: the rerun gets 200 and restarts

    def interrupt(event: ProgressEvent) -> None:
        if event.transferred > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.download("build/app.bin", tmp_path / "out.bin", on_progress=interrupt)
    [part] = tmp_path.iterdir()
    assert part.name.startswith(".out.bin.updl-") and part.name.endswith(".part")
    assert 0 < part.stat().st_size <= len(DATA)
    client.download("build/app.bin", tmp_path / "out.bin")
    assert server.calls[1].request.headers["Range"].startswith("bytes=")
    assert (tmp_path / "out.bin").read_bytes() == DATA
    assert_no_litter(tmp_path, "out.bin")


def test_not_found_is_not_retried(server: responses.RequestsMock, client: Client, tmp_path: Path) -> None:
    server.get(FILE, status=404, json={"error": "no such file", "name": "build/app.bin"})
    with pytest.raises(NotFoundError, match=r"no such file: build/app\.bin") as info:
        client.download("build/app.bin", tmp_path / "out.bin")
    assert isinstance(info.value, FileNotFoundError)
    assert_no_litter(tmp_path)


def test_download_into_file_object(server: responses.RequestsMock, client: Client) -> None:
    serve(server, DATA, md5_of=b"x")
    serve(server, DATA)
    sink = io.BytesIO()
    client.download("build/app.bin", sink)
    assert sink.getvalue() == DATA  # rewound and truncated before the second attempt


def test_progress_last_event_is_the_size(server: responses.RequestsMock, client: Client, tmp_path: Path) -> None:
    serve(server, DATA, md5_of=b"x")
    serve(server, DATA)
    events: list[ProgressEvent] = []
    client.download("build/app.bin", tmp_path / "o", on_progress=events.append)
    assert events[-1] == ProgressEvent("build/app.bin", len(DATA), len(DATA), attempt=2)
    assert any(b.transferred < a.transferred for a, b in itertools.pairwise(events))


def test_get_503_is_retried_by_the_loop(server: responses.RequestsMock, client: Client, sleeps: SleepRecorder) -> None:
    server.get(URL + "/info/a", status=503, json={"error": "busy"})
    server.get(URL + "/info/a", json=file_info("a", b"abc"))
    assert client.info("a").size == 3
    assert len(sleeps.delays) == 1  # waited through the injected sleep, not inside urllib3


def test_list_follows_cursor(server: responses.RequestsMock, client: Client) -> None:
    server.get(
        URL + "/files",
        json={"files": [file_info("a", b"1")], "next_cursor": "c1"},
        match=[responses.matchers.query_param_matcher({"prefix": "x"})],
    )
    server.get(
        URL + "/files",
        json={"files": [file_info("b", b"2")], "next_cursor": None},
        match=[responses.matchers.query_param_matcher({"prefix": "x", "cursor": "c1"})],
    )
    assert [f.name for f in client.list("x")] == ["a", "b"]


def test_delete(server: responses.RequestsMock, client: Client) -> None:
    server.delete(URL + "/files/a%20b", status=204)
    client.delete("a b")
    server.delete(URL + "/files/a%20b", status=404, json={"error": "no such file", "name": "a b"})
    with pytest.raises(NotFoundError):
        client.delete("a b")


class Endless(io.RawIOBase):
    """A body as good as endless (far more than any size announced); counts the bytes read from it."""

    def __init__(self, end: int = 32 * CHUNK_SIZE) -> None:
        self.served = 0
        self._end = end

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = min(len(buffer), self._end - self.served)
        buffer[:size] = b"\xaa" * size
        self.served += size
        return size


def test_a_body_longer_than_announced_is_cut_off(
    server: responses.RequestsMock, client: Client, tmp_path: Path
) -> None:
    body = Endless()
    server.get(FILE, body=io.BufferedReader(body), headers=download_headers(DATA))
    with pytest.raises(ProtocolError, match="more than the 300000 bytes") as failure:
        client.download("build/app.bin", tmp_path / "out.bin")
    assert failure.value.attempts == 1  # the same server would send the same again
    assert body.served <= len(DATA) + 2 * CHUNK_SIZE
    assert_no_litter(tmp_path)


def test_a_body_longer_than_announced_is_cut_off_in_a_file_object(
    server: responses.RequestsMock, client: Client
) -> None:
    body = Endless()
    server.get(FILE, body=io.BufferedReader(body), headers=download_headers(DATA))
    sink = io.BytesIO()
    with pytest.raises(ProtocolError):
        client.download("build/app.bin", sink)
    assert len(sink.getvalue()) <= len(DATA) and body.served <= len(DATA) + 2 * CHUNK_SIZE


def listed(data: bytes, size: int | None = None) -> list[FileInfo]:
    return [FileInfo.from_json(file_info("build/app.bin", data, **({} if size is None else {"size": size})))]


def test_a_body_longer_than_listed_is_cut_off(server: responses.RequestsMock, client: Client, tmp_path: Path) -> None:
    body = Endless()  # no Content-Length: only the listing knows the size
    headers = {k: v for k, v in download_headers(DATA).items() if k != "Content-Length"}
    server.get(FILE, body=io.BufferedReader(body), headers=headers)
    tasks, _ = plan_downloads(listed(DATA), "build/", tmp_path)
    [outcome] = download_batch(client, tasks)
    assert isinstance(outcome.error, ProtocolError)
    assert body.served <= len(DATA) + 2 * CHUNK_SIZE
    assert_no_litter(tmp_path)


def test_a_size_other_than_listed_is_refused(server: responses.RequestsMock, client: Client, tmp_path: Path) -> None:
    serve(server, DATA)
    tasks, _ = plan_downloads(listed(DATA, size=1000), "build/", tmp_path)
    [outcome] = download_batch(client, tasks)
    assert isinstance(outcome.error, ProtocolError) and "changed" in str(outcome.error)
    assert_no_litter(tmp_path)


def page(*names: str, cursor: str | None) -> dict[str, object]:
    return {"files": [file_info(n, b"1") for n in names], "next_cursor": cursor}


def test_list_stops_at_a_repeated_cursor(server: responses.RequestsMock, client: Client) -> None:
    server.get(URL + "/files", json=page("a", cursor="c1"))
    server.get(URL + "/files", json=page("b", cursor="c1"))
    with pytest.raises(ProtocolError, match="repeated the cursor 'c1'"):
        client.list()


def test_list_stops_at_a_repeated_page(server: responses.RequestsMock, client: Client) -> None:
    server.get(URL + "/files", json=page("a", "b", cursor="c1"))
    server.get(URL + "/files", json=page("a", "b", cursor="c2"))  # a fresh cursor, the same page
    with pytest.raises(ProtocolError, match="repeated a page"):
        client.list()


def test_list_stops_after_many_empty_pages(server: responses.RequestsMock, client: Client) -> None:
    for i in range(100):
        server.get(URL + "/files", json=page(cursor=f"c{i}"))
    with pytest.raises(ProtocolError, match="100 empty pages"):
        client.list()


def repr_digest(sha256_of: bytes) -> str:
    """RFC 9530 ``Repr-Digest`` announcing the SHA-256 of ``sha256_of``."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(sha256_of).digest()).decode() + ":"


def test_sha256_checked_on_disk_when_asked(server: responses.RequestsMock, client: Client, tmp_path: Path) -> None:
    """``checksum="sha256"``: a file whose MD5 matches but whose SHA-256 is not the server's never
    appears; the right one lands with the server's SHA-256 in its info."""
    for _ in range(4):  # every attempt: the retries start from 0 and meet the same SHA-256
        server.get(FILE, body=DATA, headers={**download_headers(DATA), "Repr-Digest": repr_digest(b"other bytes")})
    with pytest.raises(ChecksumMismatchError) as refused:
        client.download("build/app.bin", tmp_path / "out.bin", checksum="sha256")
    assert "sha256" in str(refused.value)
    assert_no_litter(tmp_path)
    server.get(FILE, body=DATA, headers={**download_headers(DATA), "Repr-Digest": repr_digest(DATA)})
    info = client.download("build/app.bin", tmp_path / "out.bin", checksum="sha256")
    assert info.sha256 == hashlib.sha256(DATA).hexdigest()
    assert (tmp_path / "out.bin").read_bytes() == DATA
