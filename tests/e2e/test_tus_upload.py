"""The SDK's resumable (tus) upload against a live server: one read of the file, the MD5 on the
last PATCH, verification from the completing answer, and never a delete on the client's side."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import updl
from tests.support.files import md5_hex
from tests.support.live_server import LiveServer
from updl.sdk.config import load_settings
from updl.sdk.errors import ChecksumMismatchError, ConnectionFailedError

MIB = 1024 * 1024
SIZE = 5 * MIB + 123  # six PATCHes of 1 MiB, the last one short


class CountingFile:
    """A binary file that counts the bytes read through it."""

    def __init__(self, inner: Any, counter: list[int]) -> None:
        self._inner = inner
        self._counter = counter

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._inner.read(size)
        self._counter[0] += len(data)
        return data

    def __enter__(self) -> CountingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def bytes_read(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], list[int]]:
    """``count(path)``: from now on, every byte read from ``path`` through ``Path.open`` is counted."""
    original = Path.open

    def count(path: Path) -> list[int]:
        counter = [0]

        def opening(self: Path, *args: Any, **kwargs: Any) -> Any:
            handle = original(self, *args, **kwargs)
            return CountingFile(handle, counter) if self == path else handle

        monkeypatch.setattr(Path, "open", opening)
        return counter

    return count


@pytest.fixture
def client(live_server: LiveServer, token: str) -> Iterator[updl.Client]:
    """A client that sends every file over tus in 1 MiB PATCHes, without retrying (not by content:
    these tests follow the tus requests; tests/e2e/test_upload_by_content.py has the offer)."""
    settings = dataclasses.replace(
        load_settings(live_server.url, token), resumable_threshold=0, resumable_chunk_size=MIB, dedup=False
    )
    with updl.Client(settings=settings) as made:
        yield made


Request = Callable[..., requests.Response]


def spy(
    monkeypatch: pytest.MonkeyPatch,
    client: updl.Client,
    wrap: Callable[[Request, str, str, dict[str, Any]], requests.Response],
) -> list[str]:
    """Route the client's requests through ``wrap(send, method, path, kwargs)``; log them."""
    transport = client._transport
    send: Request = type(transport).request.__get__(transport)  # unwrapped, even when re-spied
    log: list[str] = []

    def request(method: str, path: str, **kwargs: Any) -> requests.Response:
        log.append(f"{method} {path}")
        return wrap(send, method, path, kwargs)

    monkeypatch.setattr(transport, "request", request)
    return log


def passthrough(send: Request, method: str, path: str, kwargs: dict[str, Any]) -> requests.Response:
    return send(method, path, **kwargs)


def is_final_patch(method: str, kwargs: dict[str, Any]) -> bool:
    return method == "PATCH" and "Upload-Md5" in kwargs.get("headers", {})


def test_a_fresh_upload_reads_the_file_once(
    client: updl.Client,
    make_file: Callable[..., Path],
    bytes_read: Callable[[Path], list[int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = make_file("once.bin", SIZE)
    counter = bytes_read(source)
    log = spy(monkeypatch, client, passthrough)
    events: list[updl.ProgressEvent] = []
    info = client.upload(source, on_progress=events.append, retries=0)
    assert counter[0] == SIZE  # no hashing pass before sending
    assert info.md5 == md5_hex(source) and info.size == SIZE
    assert log == ["POST /tus/"] + [f"PATCH {log[1].split()[1]}"] * 6  # no GET /info, no DELETE
    assert events[-1].transferred == SIZE
    assert client.info("once.bin").md5 == info.md5


def test_a_resumed_upload_hashes_the_sent_prefix_and_sends_the_rest(
    client: updl.Client,
    make_file: Callable[..., Path],
    bytes_read: Callable[[Path], list[int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = make_file("resumed.bin", SIZE)
    patches = 0

    def drop_after_two(send: Request, method: str, path: str, kwargs: dict[str, Any]) -> requests.Response:
        nonlocal patches
        if method == "PATCH":
            patches += 1
            if patches > 2:
                raise ConnectionFailedError("the network went away")
        return send(method, path, **kwargs)

    spy(monkeypatch, client, drop_after_two)
    with pytest.raises(ConnectionFailedError):
        client.upload(source, retries=0)
    counter = bytes_read(source)
    log = spy(monkeypatch, client, passthrough)
    info = client.upload(source, retries=0)
    assert info.md5 == md5_hex(source)
    assert log[0].startswith("HEAD /tus/") and len(log) == 1 + 4  # the 4 chunks not yet sent
    assert counter[0] == SIZE  # the 2 MiB the server has are read again, only to hash them


def test_a_lost_last_answer_is_learned_from_head(
    client: updl.Client, make_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_file("lost.bin", SIZE)

    def lose_the_last_answer(send: Request, method: str, path: str, kwargs: dict[str, Any]) -> requests.Response:
        response = send(method, path, **kwargs)
        if is_final_patch(method, kwargs):
            raise ConnectionFailedError("killed before reading the answer")
        return response

    spy(monkeypatch, client, lose_the_last_answer)
    with pytest.raises(ConnectionFailedError):
        client.upload(source, retries=0)
    log = spy(monkeypatch, client, passthrough)
    info = client.upload(source, retries=0)
    assert [entry.split()[0] for entry in log] == ["HEAD"]  # done: nothing sent again
    assert (info.md5, info.size) == (md5_hex(source), SIZE)
    assert [f.name for f in client.list(prefix="lost")] == ["lost.bin"]


def test_on_a_mismatch_the_server_refuses_and_the_client_deletes_nothing(
    client: updl.Client, make_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier = client.upload(make_file("kept.bin", 1000), "same.bin")
    source = make_file("new.bin", SIZE)

    def corrupt_the_md5(send: Request, method: str, path: str, kwargs: dict[str, Any]) -> requests.Response:
        if is_final_patch(method, kwargs):
            kwargs["headers"] = {**kwargs["headers"], "Upload-Md5": "0" * 32}
        return send(method, path, **kwargs)

    log = spy(monkeypatch, client, corrupt_the_md5)
    with pytest.raises(ChecksumMismatchError) as failure:
        client.upload(source, "same.bin", retries=0)
    assert failure.value.status == 409 and failure.value.actual == md5_hex(source)
    assert not [entry for entry in log if entry.startswith(("DELETE", "GET"))]
    assert client.info("same.bin").md5 == earlier.md5  # the server refused before commit


def test_another_clients_newer_version_is_left_alone(
    client: updl.Client,
    live_server: LiveServer,
    token: str,
    make_file: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, other = make_file("mine.bin", SIZE), make_file("theirs.bin", 2000)

    def race_after_completion(send: Request, method: str, path: str, kwargs: dict[str, Any]) -> requests.Response:
        response = send(method, path, **kwargs)
        if is_final_patch(method, kwargs):  # another client replaces the file right away
            with updl.Client(live_server.url, token) as theirs:
                theirs.upload(other, "shared.bin")
        return response

    spy(monkeypatch, client, race_after_completion)
    info = client.upload(source, "shared.bin", retries=0)
    assert info.md5 == md5_hex(source)  # what this upload stored, from the completing answer
    assert client.info("shared.bin").md5 == hashlib.md5(other.read_bytes()).hexdigest()
