"""What a client may hold, and for how long: head size, head and body timeouts, connections.

Each test starts a server with small limits, so nothing waits long; every wait
is on the socket (the server answering or closing it), bounded by ``DEADLINE``.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import socket
from collections.abc import Callable
from resource import RLIM_INFINITY
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.api import (
    Api,
    answer,
    partial_temp_exists,
    raw_request,
    read_response,
    start_raw_put,
    temp_files,
    until_closed,
)
from tests.support.tus import created, offset_of, patch, staging, start_raw_patch
from tests.support.waiting import wait_for
from updl_server.connections import descriptor_budget

if TYPE_CHECKING:
    from tests.support.live_server import LiveServer

DEADLINE = 15.0
HEADER_LIMIT = 8 * 1024
# Timeouts short for a test, long enough that no legitimate request of the test trips them.
SMALL_LIMITS = ("--max-header-size", "8KiB", "--header-timeout", "2", "--body-timeout", "2")


def connect(server: LiveServer | Api) -> socket.socket:
    """A raw connection to a server, reads bounded by ``DEADLINE``."""
    parts = urlsplit(server.base if isinstance(server, Api) else server.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=DEADLINE)


def head_of(*headers: str) -> bytes:
    """A complete ``GET /health`` request head with ``headers``."""
    lines = ["GET /health HTTP/1.1", "Host: test", *headers, "Connection: close", "", ""]
    return "\r\n".join(lines).encode()


def test_default_header_limit_is_64_kib(live_server: LiveServer) -> None:
    sock = connect(live_server)
    sock.sendall(head_of("X-Big: " + "a" * 100_000))
    status, body = answer(until_closed(sock))
    assert (status, body["max_header_size"]) == (431, 64 * 1024)
    assert requests.get(f"{live_server.url}/health", timeout=10).status_code == 200


def test_oversized_heads_get_431_and_normal_ones_still_work(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(*SMALL_LIMITS)
    oversized = [
        head_of("X-Big: " + "a" * (HEADER_LIMIT + 1)),  # one header
        head_of(*(f"X-Many-{i}: {'b' * 20}" for i in range(400))),  # many small ones
        b"GET /" + b"c" * 500_000,  # a request line that never ends: read and discarded
    ]
    for request in oversized:
        sock = connect(server)
        sock.sendall(request)
        status, body = answer(until_closed(sock))
        assert status == 431 and body["error"] == "request headers too large"
        assert body["max_header_size"] == HEADER_LIMIT
    sock = connect(server)
    sock.sendall(head_of("X-Fits: " + "d" * (HEADER_LIMIT - 200)))
    assert until_closed(sock).startswith(b"HTTP/1.1 200 ")


def test_slow_heads_are_answered_408_and_closed(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(*SMALL_LIMITS)
    silent = connect(server)  # connects and says nothing: closed without an answer
    assert until_closed(silent) == b""
    # Slowloris: a byte at a time keeps the connection busy, but the deadline holds.
    trickle = connect(server)
    trickle.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n")
    for _ in range(int(DEADLINE / 0.1)):
        readable, _, _ = select.select([trickle], [], [], 0.1)
        if readable:
            break
        trickle.sendall(b"X")
    status, body = answer(until_closed(trickle))
    assert status == 408 and body["timeout"] == 2.0
    assert requests.get(f"{server.url}/health", timeout=10).status_code == 200


def test_stalled_body_is_dropped_with_its_temp_file(
    server_factory: Callable[..., LiveServer], make_api: Callable[[LiveServer], Api]
) -> None:
    server = server_factory(*SMALL_LIMITS)
    api = make_api(server)
    sock = start_raw_put(api, "stalled.bin", 4_000_000, os.urandom(1_500_000))
    wait_for(lambda: partial_temp_exists(server.data_dir), "the upload to reach the disk")
    status, body = answer(until_closed(sock))  # the client sends nothing more
    assert status == 408 and "stalled" in str(body["error"])
    wait_for(lambda: temp_files(server.data_dir) == [], "the temporary blob to be removed")
    assert api.names() == []


def start_stalling_patch(
    server: LiveServer, api: Api, path: str, data: bytes, checksum: bytes | None = None
) -> socket.socket:
    """A PATCH of ``data`` at 0 that sends 2 MiB and stops, once it holds the upload."""
    # over one ~1 MiB write batch: bytes reach staging
    sock = start_raw_patch(api, path, 0, len(data), data[: 2 * 1024 * 1024], checksum)
    staged = staging(server) / path.rsplit("/", 1)[1]
    wait_for(lambda: staged.stat().st_size > 0, "the PATCH to hold the upload and write")
    return sock


def test_stalled_tus_patch_keeps_what_arrived_and_releases_its_upload(
    server_factory: Callable[..., LiveServer], make_api: Callable[[LiveServer], Api]
) -> None:
    server = server_factory(*SMALL_LIMITS)
    api = make_api(server)
    data = os.urandom(3 * 1024 * 1024)
    path = created(api, len(data))
    sock = start_stalling_patch(server, api, path, data)
    status, _ = answer(until_closed(sock))  # then it stalls
    assert status == 408
    # No checksum: the 2 MiB received are kept, durable and released by the time the 408
    # is sent, so the client resumes there at once.
    assert offset_of(api, path) == 2 * 1024 * 1024
    resumed = patch(api, path, 2 * 1024 * 1024, data[2 * 1024 * 1024 :], algorithm=None)
    assert resumed.status_code == 204, resumed.text
    assert api.get("big.bin").content == data


def test_stalled_tus_patch_with_checksum_is_rolled_back_and_releases_its_upload(
    server_factory: Callable[..., LiveServer], make_api: Callable[[LiveServer], Api]
) -> None:
    server = server_factory(*SMALL_LIMITS)
    api = make_api(server)
    data = os.urandom(3 * 1024 * 1024)
    path = created(api, len(data))
    sock = start_stalling_patch(server, api, path, data, hashlib.md5(data).digest())
    status, _ = answer(until_closed(sock))
    assert status == 408
    assert offset_of(api, path) == 0  # the checksum covers the whole body: all or nothing
    resumed = patch(api, path, 0, data)
    assert resumed.status_code == 204, resumed.text
    assert api.get("big.bin").content == data


def test_busy_upload_says_when_a_stalled_writer_lets_go(
    server_factory: Callable[..., LiveServer], make_api: Callable[[LiveServer], Api]
) -> None:
    server = server_factory("--body-timeout", "30")
    api = make_api(server)
    data = os.urandom(3 * 1024 * 1024)
    path = created(api, len(data))
    sock = start_stalling_patch(server, api, path, data)
    try:
        busy = patch(api, path, 0, data)
        assert busy.status_code == 423, busy.text
        assert busy.headers["Retry-After"] == "30"
    finally:
        sock.close()


def test_connections_over_the_cap_get_503_then_are_closed_at_once(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory("--max-connections", "2", "--workers", "1")  # the cap is per worker
    held = [connect(server) for _ in range(2)]  # accepted in order, before the next ones
    try:
        for sock in held:
            sock.sendall(b"GET /hea")  # half a request line: the connection stays open
        refused = connect(server)
        refused.sendall(head_of())
        raw = until_closed(refused)
        status, body = answer(raw)
        assert status == 503 and body["max_connections"] == 2
        assert b"\r\nretry-after: 1\r\n" in raw.lower()
        # Twice the cap open: the next connection is closed before it can ask anything.
        held += [connect(server) for _ in range(2)]
        assert until_closed(connect(server)) == b""
    finally:
        for sock in held:
            sock.close()
    wait_for(
        lambda: requests.get(f"{server.url}/health", timeout=10).status_code == 200,
        "the server to serve again once the connections are gone",
    )


def test_each_request_on_a_connection_has_its_own_head_budget(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(*SMALL_LIMITS)
    with requests.Session() as session:  # one kept-alive connection
        for _ in range(3):
            response = session.get(f"{server.url}/health", timeout=10, headers={"X-Fits": "e" * (HEADER_LIMIT - 200)})
            assert response.status_code == 200


@pytest.mark.parametrize(
    ("soft", "hard", "expected"),
    [
        (1024, 1_048_576, (4256, 1000)),  # raised to what 1000 connections need
        (8192, 8192, (8192, 1000)),  # already enough: left alone
        (1024, RLIM_INFINITY, (4256, 1000)),
        (RLIM_INFINITY, RLIM_INFINITY, (RLIM_INFINITY, 1000)),
        (1024, 1024, (1024, 192)),  # cannot be raised: fewer connections
        (100, 100, (100, 1)),
    ],
)
def test_descriptor_budget(soft: int, hard: int, expected: tuple[int, int]) -> None:
    assert descriptor_budget(1000, soft, hard) == expected


@pytest.mark.parametrize(
    "head",
    [
        "GET /files/\xff HTTP/1.1\r\n",
        "PUT /files/a HTTP/1.1\r\nContent-Length: abc\r\n",
        "PUT /files/a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n",
    ],
    ids=["raw byte in the URL", "Content-Length not a number", "two Content-Lengths"],
)
def test_requests_the_parser_refuses_get_a_json_400(api: Api, head: str) -> None:
    """Even the HTTP parser's refusals carry a JSON body, like every other error."""
    with raw_request(api, head) as sock:
        status, body = read_response(sock)
    assert status == 400
    assert "error" in json.loads(body)
