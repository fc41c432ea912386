"""``--retries`` and the retry lines of every command: what they say is what was sent.

One loop retries every request (issue 8, item 6): ``get --retries 0`` once sent
4 GETs to a failing server (urllib3's ``Retry`` under the SDK loop) and printed
no retry line.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from tests.support.cli import error_line, run
from tests.support.scripted import URL, download_headers, file_info
from updl.exitcodes import ExitCode, describe
from updl.sdk.errors import ServerError

FILE = URL + "/files/build/app.bin"
DATA = bytes(range(256)) * 100


def retry_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ", retrying (attempt " in line]


def always_busy(server: responses.RequestsMock, method: str, url: str) -> None:
    """More 503s than any attempt count here, so extra requests would be answered and counted."""
    server.assert_all_requests_are_fired = False
    for _ in range(8):
        server.add(method, url, status=503, json={"error": "busy"})


@pytest.mark.parametrize("retries", [0, 2])
def test_get_sends_exactly_retries_plus_one_gets(server: responses.RequestsMock, tmp_path: Path, retries: int) -> None:
    always_busy(server, "GET", FILE)
    result = run("get", "--retries", str(retries), "build/app.bin", "-o", str(tmp_path / "out"))
    assert len(server.calls) == retries + 1
    described = describe(ServerError("x"))
    assert described is not None and result.exit_code == described[0] != ExitCode.OK
    lines = retry_lines(result.stderr)
    assert [
        (line.startswith("updl: build/app.bin: server error 503"), line.split(", retrying ")[1].rsplit(" in ", 1)[0])
        for line in lines
    ] == [(True, f"(attempt {n} of {retries + 1})") for n in range(2, retries + 2)]
    last = error_line(result)
    assert "server error 503" in last
    assert last.endswith(f" (after {retries + 1} attempts)") if retries else "(after" not in last
    assert list(tmp_path.iterdir()) == []


def test_get_500_is_retried_then_succeeds(server: responses.RequestsMock, tmp_path: Path) -> None:
    server.get(FILE, status=500, json={"error": "internal server error"})
    server.get(FILE, body=DATA, headers=download_headers(DATA))
    result = run("get", "build/app.bin", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.stderr
    assert len(retry_lines(result.stderr)) == 1
    assert (tmp_path / "out").read_bytes() == DATA


def test_put_retry_after_an_hour_fails_at_once(server: responses.RequestsMock, tmp_path: Path) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(DATA)
    server.post(URL + "/upload", status=429, json={"error": "slow down"}, headers={"Retry-After": "3600"})
    result = run("put", str(source))
    assert result.exit_code != 0 and retry_lines(result.stderr) == []
    assert "asked to wait 3600s" in error_line(result)


@pytest.mark.parametrize(
    "args, method, url, answer",
    [
        (("info", "a"), "GET", URL + "/info/a", {"json": file_info("a", b"abc")}),
        (("ls",), "GET", URL + "/files", {"json": {"files": [file_info("a", b"abc")], "next_cursor": None}}),
        (("rm", "a"), "DELETE", URL + "/files/a", {"status": 204}),
    ],
)
def test_info_ls_rm_retry_with_a_line_each(
    server: responses.RequestsMock, args: tuple[str, ...], method: str, url: str, answer: dict[str, Any]
) -> None:
    for _ in range(2):
        server.add(method, url, status=503, json={"error": "busy"})
    server.add(method, url, **answer)
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    assert len(server.calls) == 3
    assert [line.split(", retrying ")[1].rsplit(" in ", 1)[0] for line in retry_lines(result.stderr)] == [
        "(attempt 2 of 4)",
        "(attempt 3 of 4)",
    ]


def test_quiet_hides_the_retry_lines(server: responses.RequestsMock) -> None:
    server.get(URL + "/info/a", status=503, json={"error": "busy"})
    server.get(URL + "/info/a", json=file_info("a", b"abc"))
    result = run("-q", "info", "a")
    assert result.exit_code == 0 and result.stderr == ""


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port that refuses connections: bound (so nobody else takes it) but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_unreachable_get_counts_real_attempts(refusing_port: int, tmp_path: Path) -> None:
    # The real adapter on a real socket: no retries hidden below the loop (urllib3 used to
    # retry the connection 3 times per attempt and the loop then gave up after one).
    url = f"http://127.0.0.1:{refusing_port}"
    result = run("--url", url, "get", "--retries", "2", "a", "-o", str(tmp_path / "out"))
    assert result.exit_code == ExitCode.UNREACHABLE
    assert len(retry_lines(result.stderr)) == 2
    assert error_line(result).endswith("(after 3 attempts)")


@pytest.mark.parametrize(
    "args, method, url",
    [
        (("get", "a", "b"), "HEAD", URL + "/files/a"),  # the HEAD that plans several NAMEs
        (("get", "--prefix", "x"), "GET", URL + "/files"),  # the listing that plans --prefix
    ],
)
def test_get_retries_covers_the_planning_requests(
    server: responses.RequestsMock, tmp_path: Path, args: tuple[str, ...], method: str, url: str
) -> None:
    always_busy(server, method, url)
    result = run(*args, "--retries", "1", "-o", str(tmp_path))
    assert len(server.calls) == 2 and result.exit_code != 0
    assert len(retry_lines(result.stderr)) == 1


def test_put_skip_existing_head_obeys_retries(server: responses.RequestsMock, tmp_path: Path) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(DATA)
    always_busy(server, "HEAD", URL + "/files/a.bin")
    result = run("put", "--skip-existing", "--retries", "0", str(source))
    assert len(server.calls) == 1 and result.exit_code != 0
    assert retry_lines(result.stderr) == []
