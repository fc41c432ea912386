"""The default resumable upload: one streamed PATCH for all but a checksummed tail that carries the
whole file's MD5; after a drop the next attempt resumes from what the server kept of the stream."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import updl
from tests.support.files import md5_hex
from tests.support.live_server import LiveServer
from tests.support.relay import Relay
from tests.support.waiting import wait_for
from updl.sdk.config import load_settings
from updl.sdk.errors import ConnectionFailedError
from updl.sdk.tus import STREAM_TAIL

MIB = 1024 * 1024
SIZE = 12 * MIB + 321

Request = Callable[..., requests.Response]


@pytest.fixture
def relay(live_server: LiveServer) -> Iterator[Relay]:
    proxy = Relay(int(live_server.url.rsplit(":", 1)[1]))
    yield proxy
    proxy.close()


@pytest.fixture
def client(relay: Relay, token: str) -> Iterator[updl.Client]:
    """A client with the default (streamed) tus upload for every file, through the relay (not by
    content: these tests follow the tus requests; tests/e2e/test_upload_by_content.py has the offer)."""
    settings = dataclasses.replace(load_settings(relay.url, token), resumable_threshold=0, dedup=False)
    assert settings.resumable_chunk_size == 0  # the default
    with updl.Client(settings=settings) as made:
        yield made


def spy(monkeypatch: pytest.MonkeyPatch, client: updl.Client) -> list[tuple[str, str, dict[str, str]]]:
    """Log the method, path and headers of every request the client sends."""
    transport = client._transport
    send: Request = type(transport).request.__get__(transport)
    log: list[tuple[str, str, dict[str, str]]] = []

    def request(method: str, path: str, **kwargs: Any) -> requests.Response:
        log.append((method, path, dict(kwargs.get("headers") or {})))
        return send(method, path, **kwargs)

    monkeypatch.setattr(transport, "request", request)
    return log


def server_offset(live_server: LiveServer, token: str, path: str) -> int:
    response = requests.head(
        live_server.url + path, timeout=10, headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    )
    return int(response.headers.get("Upload-Offset", 0))


def test_a_fresh_upload_is_one_streamed_patch_and_a_checksummed_tail(
    client: updl.Client, make_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_file("streamed.bin", SIZE)
    log = spy(monkeypatch, client)
    events: list[updl.ProgressEvent] = []
    info = client.upload(source, on_progress=events.append, retries=0)
    assert (info.md5, info.size) == (md5_hex(source), SIZE)
    assert [method for method, _, _ in log] == ["POST", "PATCH", "PATCH"]
    stream, tail = log[1][2], log[2][2]
    assert "Upload-Checksum" not in stream and "Upload-Md5" not in stream and stream["Upload-Offset"] == "0"
    assert tail["Upload-Offset"] == str(SIZE - STREAM_TAIL)
    assert tail["Upload-Checksum"].startswith("crc32 ") and tail["Upload-Md5"] == info.md5
    assert events[-1].transferred == SIZE
    assert client.info("streamed.bin").md5 == info.md5


def test_a_small_file_goes_in_one_checksummed_patch(
    client: updl.Client, make_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_file("small.bin", STREAM_TAIL - 5)
    log = spy(monkeypatch, client)
    info = client.upload(source, retries=0)
    assert info.md5 == md5_hex(source)
    assert [method for method, _, _ in log] == ["POST", "PATCH"]
    assert "Upload-Checksum" in log[1][2] and log[1][2]["Upload-Md5"] == info.md5


def test_a_dropped_stream_resumes_from_what_the_server_kept(
    client: updl.Client,
    relay: Relay,
    live_server: LiveServer,
    token: str,
    make_file: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = make_file("dropped.bin", SIZE)
    log = spy(monkeypatch, client)
    relay.stall_up_after = 5 * MIB  # the stream stops arriving at the server after about 5 MiB
    failures: list[BaseException] = []

    def first_attempt() -> None:
        try:
            client.upload(source, retries=0)
        except ConnectionFailedError as exc:
            failures.append(exc)

    worker = threading.Thread(target=first_attempt)
    worker.start()
    wait_for(relay.stalled.is_set, "the stream to stall")
    relay.drop_connections()
    worker.join(60)
    assert len(failures) == 1
    upload = log[1][1]
    wait_for(lambda: server_offset(live_server, token, upload) > 4 * MIB, "the server to keep what it received")
    kept = server_offset(live_server, token, upload)
    relay.reset()
    del log[:]
    info = client.upload(source, retries=0)
    assert (info.md5, info.size) == (md5_hex(source), SIZE)
    assert [method for method, _, _ in log] == ["HEAD", "PATCH", "PATCH"]
    assert log[1][2]["Upload-Offset"] == str(kept)
    assert relay.up < SIZE - kept + 64 * 1024  # only what the server did not have, plus headers
