"""Parallel ranged downloads into the temporary file: N GETs, each range at its offset, resumable from
the ranges record beside the .part, verified on the whole file, one stream when ranges are refused."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import updl
from tests.support.files import md5_hex
from tests.support.live_server import LiveServer
from tests.support.relay import Relay
from updl.sdk import ranged
from updl.sdk.config import load_settings
from updl.sdk.errors import ConnectionFailedError

MIB = 1024 * 1024
SIZE = 6 * MIB + 7

Request = Callable[..., requests.Response]


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split files from 1 MiB on (the real threshold, 64 MiB, would make every test slow)."""
    monkeypatch.setattr(ranged, "PARALLEL_MIN_SIZE", MIB)


@pytest.fixture
def relay(live_server: LiveServer) -> Iterator[Relay]:
    proxy = Relay(int(live_server.url.rsplit(":", 1)[1]))
    yield proxy
    proxy.close()


@pytest.fixture
def client(relay: Relay, token: str) -> Iterator[updl.Client]:
    settings = dataclasses.replace(load_settings(relay.url, token), download_connections=4)
    with updl.Client(settings=settings) as made:
        yield made


def spy(
    monkeypatch: pytest.MonkeyPatch, client: updl.Client, change: Callable[[dict[str, str]], object] | None = None
) -> list[dict[str, str]]:
    """Log the headers of every GET the client sends (``change`` may alter them first)."""
    transport = client._transport
    send: Request = type(transport).request.__get__(transport)
    log: list[dict[str, str]] = []

    def request(method: str, path: str, **kwargs: Any) -> requests.Response:
        if method == "GET":
            headers = dict(kwargs.get("headers") or {})
            if change is not None:
                change(headers)
            kwargs["headers"] = headers
            log.append(headers)
        return send(method, path, **kwargs)

    monkeypatch.setattr(transport, "request", request)
    return log


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_a_big_file_comes_over_four_ranges_and_is_verified(
    client: updl.Client, make_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_file("big.bin", SIZE)
    client.upload(source, "big.bin")
    out = tmp_path / "out"
    out.mkdir()
    log = spy(monkeypatch, client)
    events: list[updl.ProgressEvent] = []
    info = client.download("big.bin", out / "big.bin", on_progress=events.append)
    assert (info.md5, info.size) == (md5_hex(source), SIZE)
    assert md5_hex(out / "big.bin") == info.md5
    step = -(-SIZE // 4)
    assert log[0]["Range"] == "bytes=0-" and "If-Range" not in log[0]
    assert sorted(h["Range"] for h in log[1:]) == [
        f"bytes={s}-{min(SIZE, s + step) - 1}" for s in (step, 2 * step, 3 * step)
    ]
    assert all(h["If-Range"] == f'"{info.md5}"' for h in log[1:])
    assert events[-1].transferred == SIZE
    assert leftovers(out) == []  # no .part, no .ranges


def test_a_server_that_refuses_ranges_gets_one_stream(
    client: updl.Client, make_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_file("whole.bin", SIZE)
    client.upload(source, "whole.bin")
    log = spy(monkeypatch, client, lambda headers: headers.pop("Range", None))  # the answer is a 200
    info = client.download("whole.bin", tmp_path / "whole.bin")
    assert info.md5 == md5_hex(source) == md5_hex(tmp_path / "whole.bin")
    assert len(log) == 1


def test_a_small_file_is_one_stream(
    client: updl.Client, make_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_file("small.bin", MIB - 1)
    client.upload(source, "small.bin")
    log = spy(monkeypatch, client)
    info = client.download("small.bin", tmp_path / "small.bin")
    assert info.md5 == md5_hex(source) and len(log) == 1


def interrupted(client: updl.Client, target: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A download whose third range breaks after 1 MiB; returns the ranges record it leaves."""
    transport = client._transport
    send: Request = type(transport).request.__get__(transport)
    step = -(-SIZE // 4)

    def request(method: str, path: str, **kwargs: Any) -> requests.Response:
        response = send(method, path, **kwargs)
        if str((kwargs.get("headers") or {}).get("Range", "")).startswith(f"bytes={2 * step}-"):
            whole = response.iter_content

            def broken(size: int | None = 1, decode_unicode: bool = False) -> Iterator[Any]:
                received = 0
                for chunk in whole(size, decode_unicode):
                    yield chunk
                    received += len(chunk)
                    if received >= MIB:
                        raise requests.exceptions.ChunkedEncodingError("connection broken")

            response.iter_content = broken  # type: ignore[method-assign,assignment]
        return response

    monkeypatch.setattr(transport, "request", request)
    with pytest.raises(ConnectionFailedError):
        client.download("cut.bin", target, retries=0)
    monkeypatch.undo()
    monkeypatch.setattr(ranged, "PARALLEL_MIN_SIZE", MIB)
    records = [p for p in target.parent.iterdir() if p.name.endswith(".ranges")]
    assert len(records) == 1
    record: dict[str, Any] = json.loads(records[0].read_text())
    assert record["ranges"][2][2] >= 2 * step + MIB  # the broken range kept what it received
    return record


def test_an_interrupted_download_resumes_every_range(
    client: updl.Client, make_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_file("cut.bin", SIZE)
    client.upload(source, "cut.bin")
    target = tmp_path / "dl" / "cut.bin"
    record = interrupted(client, target, monkeypatch)
    log = spy(monkeypatch, client)
    info = client.download("cut.bin", target, retries=0)
    assert info.md5 == md5_hex(source) == md5_hex(target)
    unfinished = [done for _, end, done in record["ranges"] if done < end]
    assert sorted(int(h["Range"][6:].partition("-")[0]) for h in log) == unfinished  # each from where it got
    assert all(h["If-Range"] == record["etag"] for h in log)
    assert leftovers(target.parent) == []


def test_a_file_changed_on_the_server_starts_over(
    client: updl.Client, make_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.upload(make_file("v1.bin", SIZE), "cut.bin")
    target = tmp_path / "cut.bin"
    interrupted(client, target, monkeypatch)
    newer = make_file("v2.bin", SIZE + 100)
    client.upload(newer, "cut.bin")
    info = client.download("cut.bin", target, retries=0)
    assert info.md5 == md5_hex(newer) == hashlib.md5(target.read_bytes()).hexdigest()


def test_one_connection_after_a_parallel_attempt_starts_over(
    client: updl.Client, make_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_file("cut.bin", SIZE)
    client.upload(source, "cut.bin")
    target = tmp_path / "cut.bin"
    interrupted(client, target, monkeypatch)
    info = client.download("cut.bin", target, retries=0, connections=1)
    assert info.md5 == md5_hex(source) == md5_hex(target)
    assert leftovers(tmp_path) == []
