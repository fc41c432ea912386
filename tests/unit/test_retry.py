"""RetryPolicy and the retry loop, and that every request of the client goes through it."""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

import pytest
import responses

from tests.support.scripted import URL, SleepRecorder, download_headers, file_info
from updl import (
    ChecksumMismatchError,
    Client,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    TooLargeError,
)
from updl.sdk.headers import parse_retry_after
from updl.sdk.retry import RetryEvent, run_with_retries


def test_full_jitter_bounds() -> None:
    policy = RetryPolicy(retries=10, backoff_base=0.5, backoff_cap=4.0)
    random.seed(1)
    for attempt in range(1, 10):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        delays = [policy.delay(attempt, ServerError("x")) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # actually spread, not constant


def test_retry_after_wins() -> None:
    assert RetryPolicy(backoff_cap=1).delay(1, ServerError("x", retry_after=7.0)) == 7.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Fri, 27 Nov 2026 21:42:50 GMT", now=1795815767.0) == pytest.approx(3.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_loop_retries_then_succeeds(sleeps: SleepRecorder) -> None:
    events: list[RetryEvent] = []
    calls: list[int] = []

    def operation(attempt: int) -> str:
        calls.append(attempt)
        if attempt < 3:
            raise ServerError("boom", retry_after=1.5)
        return "ok"

    assert run_with_retries(operation, RetryPolicy(retries=3), name="f", on_retry=events.append, sleep=sleeps) == "ok"
    assert calls == [1, 2, 3]
    assert sleeps.delays == [1.5, 1.5]
    assert [(e.attempt, e.next_attempt, e.max_attempts) for e in events] == [(1, 2, 4), (2, 3, 4)]


def test_loop_gives_up_with_attempts_set(sleeps: SleepRecorder) -> None:
    def operation(attempt: int) -> None:
        raise ChecksumMismatchError("bad")

    with pytest.raises(ChecksumMismatchError) as info:
        run_with_retries(operation, RetryPolicy(retries=2), sleep=sleeps)
    assert info.value.attempts == 3 and len(sleeps.delays) == 2


def test_non_retryable_raises_at_once(sleeps: SleepRecorder) -> None:
    calls: list[int] = []

    def operation(attempt: int) -> None:
        calls.append(attempt)
        raise TooLargeError("too big")

    with pytest.raises(TooLargeError) as info:
        run_with_retries(operation, RetryPolicy(retries=5), sleep=sleeps)
    assert calls == [1] and sleeps.delays == [] and info.value.attempts == 1


def test_zero_retries_is_one_attempt(sleeps: SleepRecorder) -> None:
    with pytest.raises(ServerError) as info:
        run_with_retries(lambda n: (_ for _ in ()).throw(ServerError("x")), RetryPolicy(retries=0), sleep=sleeps)
    assert info.value.attempts == 1 and sleeps.delays == []


# -- one loop for every request (issue 8, item 6; Retry-After cap, item 5) ----------------------

FILE = URL + "/files/build/app.bin"
DATA = bytes(range(256)) * 1000


def busy(server: responses.RequestsMock, method: str, url: str, times: int, status: int = 503, **headers: str) -> None:
    for _ in range(times):
        server.add(method, url, status=status, json={"error": "busy"}, headers=headers)


def test_retry_after_over_the_cap_fails_at_once(sleeps: SleepRecorder) -> None:
    calls: list[int] = []

    def operation(attempt: int) -> None:
        calls.append(attempt)
        raise RateLimitedError("the server is rate limiting", retry_after=3600.0)

    with pytest.raises(RateLimitedError) as info:
        run_with_retries(operation, RetryPolicy(retries=3, retry_after_cap=60.0), sleep=sleeps)
    assert calls == [1] and sleeps.delays == [] and info.value.attempts == 1
    assert "asked to wait 3600s" in str(info.value) and "60s" in str(info.value)


def test_retry_after_up_to_the_cap_is_waited(sleeps: SleepRecorder) -> None:
    policy = RetryPolicy(retries=1, retry_after_cap=60.0)
    with pytest.raises(ServerError):
        run_with_retries(lambda n: (_ for _ in ()).throw(ServerError("x", retry_after=60.0)), policy, sleep=sleeps)
    assert sleeps.delays == [60.0]


def test_upload_retry_after_3600_does_not_sleep_an_hour(
    server: responses.RequestsMock, client: Client, tmp_path: Path, sleeps: SleepRecorder
) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(DATA)
    busy(server, "POST", URL + "/upload", 1, 503, **{"Retry-After": "3600"})
    with pytest.raises(ServerError, match="asked to wait 3600s"):
        client.upload(source)
    assert len(server.calls) == 1 and sleeps.delays == []


@pytest.mark.parametrize("retries", [0, 2])
def test_download_sends_exactly_retries_plus_one_gets(
    server: responses.RequestsMock, client: Client, tmp_path: Path, sleeps: SleepRecorder, retries: int
) -> None:
    busy(server, "GET", FILE, retries + 1)
    events: list[RetryEvent] = []
    with pytest.raises(ServerError) as info:
        client.download("build/app.bin", tmp_path / "out.bin", retries=retries, on_retry=events.append)
    assert len(server.calls) == retries + 1 and info.value.attempts == retries + 1
    assert len(events) == len(sleeps.delays) == retries
    assert [e.max_attempts for e in events] == [retries + 1] * retries


def test_download_500_is_retried_then_succeeds(
    server: responses.RequestsMock, client: Client, tmp_path: Path, sleeps: SleepRecorder
) -> None:
    busy(server, "GET", FILE, 1, status=500)
    server.get(FILE, body=DATA, headers=download_headers(DATA))
    events: list[RetryEvent] = []
    client.download("build/app.bin", tmp_path / "out.bin", on_retry=events.append)
    assert (tmp_path / "out.bin").read_bytes() == DATA
    assert [e.error.status for e in events] == [500] and len(sleeps.delays) == 1


def test_download_to_a_pipe_retries_until_bytes_are_written(
    server: responses.RequestsMock, client: Client, sleeps: SleepRecorder
) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.received = b""

        def writable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def write(self, data) -> int:
            self.received += bytes(data)
            return len(data)

    busy(server, "GET", FILE, 1)  # nothing written yet: safe to retry
    server.get(FILE, body=DATA, headers=download_headers(DATA, md5_of=b"other"))
    pipe = Pipe()
    with pytest.raises(ChecksumMismatchError) as info:  # bytes already gone down the pipe: no retry
        client.download("build/app.bin", pipe)  # type: ignore[arg-type]
    assert info.value.attempts == 2 and len(sleeps.delays) == 1 and pipe.received == DATA


@pytest.mark.parametrize("status", [500, 503, 429])
def test_info_is_retried_by_the_loop(
    server: responses.RequestsMock, client: Client, sleeps: SleepRecorder, status: int
) -> None:
    busy(server, "GET", URL + "/info/a", 2, status=status)
    server.get(URL + "/info/a", json=file_info("a", b"abc"))
    events: list[RetryEvent] = []
    assert client.info("a", on_retry=events.append).size == 3
    assert len(server.calls) == 3 and len(events) == len(sleeps.delays) == 2


def test_info_gives_up_after_exactly_the_retries(server: responses.RequestsMock, sleeps: SleepRecorder) -> None:
    busy(server, "GET", URL + "/info/a", 2)
    with Client(URL, "t", retry=RetryPolicy(retries=1), sleep=sleeps) as client, pytest.raises(ServerError) as info:
        client.info("a")
    assert len(server.calls) == 2 and info.value.attempts == 2 and len(sleeps.delays) == 1


def test_client_default_on_retry_reports_body_less_requests(
    server: responses.RequestsMock, sleeps: SleepRecorder
) -> None:
    busy(server, "HEAD", URL + "/files/a", 1)
    server.head(URL + "/files/a", headers=download_headers(b"abc"))
    events: list[RetryEvent] = []
    with Client(URL, "t", retry=RetryPolicy(retries=1), sleep=sleeps, on_retry=events.append) as client:
        head = client.head("a")
    assert head is not None and head.size == 3
    assert [(e.name, e.attempt, e.max_attempts) for e in events] == [("a", 1, 2)]


def test_list_retries_the_failed_page_only(
    server: responses.RequestsMock, client: Client, sleeps: SleepRecorder
) -> None:
    server.get(URL + "/files", json={"files": [file_info("a", b"1")], "next_cursor": "c1"})
    busy(server, "GET", URL + "/files", 2)
    server.get(URL + "/files", json={"files": [file_info("b", b"2")], "next_cursor": None})
    events: list[RetryEvent] = []
    assert [f.name for f in client.list(on_retry=events.append)] == ["a", "b"]
    cursors = [c.request.params.get("cursor") for c in server.calls]  # type: ignore[attr-defined]  # set by responses
    assert cursors == [None, "c1", "c1", "c1"]
    assert len(events) == len(sleeps.delays) == 2


def test_delete_is_retried(server: responses.RequestsMock, client: Client, sleeps: SleepRecorder) -> None:
    busy(server, "DELETE", URL + "/files/a", 3)
    server.delete(URL + "/files/a", status=204)
    client.delete("a")
    assert len(server.calls) == 4 and len(sleeps.delays) == 3


def test_delete_404_on_a_retry_means_the_first_attempt_deleted_it(
    server: responses.RequestsMock, client: Client, sleeps: SleepRecorder
) -> None:
    busy(server, "DELETE", URL + "/files/a", 1, status=502)
    server.delete(URL + "/files/a", status=404, json={"error": "no such file", "name": "a"})
    client.delete("a")
    assert len(server.calls) == 2


def test_delete_404_on_the_first_attempt_is_not_found(server: responses.RequestsMock, client: Client) -> None:
    server.delete(URL + "/files/a", status=404, json={"error": "no such file", "name": "a"})
    with pytest.raises(NotFoundError):
        client.delete("a")


def test_tus_head_is_retried_by_the_same_loop(
    server: responses.RequestsMock, tmp_path: Path, sleeps: SleepRecorder
) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(DATA)
    upload_url = URL + "/tus/u1"
    server.post(URL + "/tus/", status=201, headers={"Location": "/tus/u1"})
    busy(server, "PATCH", upload_url, 1)  # the attempt fails; the next one asks for the offset
    busy(server, "HEAD", upload_url, 1)  # and that fails too: another retry of the same loop
    server.head(upload_url, headers={"Upload-Offset": "0"})
    server.patch(
        upload_url, status=204, headers={"Upload-Offset": str(len(DATA)), "Upload-Md5": hashlib.md5(DATA).hexdigest()}
    )
    events: list[RetryEvent] = []
    with Client(URL, "t", retry=RetryPolicy(retries=2), sleep=sleeps) as client:
        info = client.upload(source, resumable_threshold=0, on_retry=events.append)
    assert info.md5 == hashlib.md5(DATA).hexdigest()
    assert [c.request.method for c in server.calls] == ["POST", "PATCH", "HEAD", "HEAD", "PATCH"]
    assert [(e.attempt, e.max_attempts) for e in events] == [(1, 3), (2, 3)]


def test_tus_423_waits_the_servers_retry_after(
    server: responses.RequestsMock, tmp_path: Path, sleeps: SleepRecorder
) -> None:
    """A 423 says when a stalled writer lets go (Retry-After); the retry waits that long, not less."""
    source = tmp_path / "big.bin"
    source.write_bytes(DATA)
    upload_url = URL + "/tus/u1"
    server.post(URL + "/tus/", status=201, headers={"Location": "/tus/u1"})
    server.patch(
        upload_url,
        status=423,
        headers={"Retry-After": "45"},
        json={"error": "another request is writing to this upload"},
    )
    server.head(upload_url, headers={"Upload-Offset": "0"})
    server.patch(
        upload_url, status=204, headers={"Upload-Offset": str(len(DATA)), "Upload-Md5": hashlib.md5(DATA).hexdigest()}
    )
    events: list[RetryEvent] = []
    with Client(URL, "t", retry=RetryPolicy(retries=1), sleep=sleeps) as client:
        info = client.upload(source, resumable_threshold=0, on_retry=events.append)
    assert info.md5 == hashlib.md5(DATA).hexdigest()
    assert [type(e.error).__name__ for e in events] == ["UploadBusyError"]
    assert sleeps.delays == [45.0]
