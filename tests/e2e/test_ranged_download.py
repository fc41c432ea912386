"""Parallel ranged downloads into the temporary file: N connections taking consecutive pieces from a
queue, each piece at its offset, resumable from the ranges record beside the .part (only the missing
bytes are fetched again), verified on the whole file, one stream when ranges are refused."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
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
from updl.sdk import ranged
from updl.sdk.config import load_settings
from updl.sdk.errors import ChecksumMismatchError, ConnectionFailedError

MIB = 1024 * 1024
SIZE = 6 * MIB + 7  # seven pieces of 1 MiB, the last of 7 bytes
PIECES = [(start, min(SIZE, start + MIB)) for start in range(0, SIZE, MIB)]

Request = Callable[..., requests.Response]


def small_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split files from 1 MiB on into pieces of 1 MiB, read 256 KiB at a time (the real sizes, 64 and
    16 MiB, would make every test slow)."""
    monkeypatch.setattr(ranged, "PARALLEL_MIN_SIZE", MIB)
    monkeypatch.setattr(ranged, "PIECE_SIZE", MIB)
    monkeypatch.setattr(ranged, "READ_SIZE", 256 * 1024)
    monkeypatch.setattr(ranged, "PARALLEL_MIN_RTT", 0.0)  # loopback is a short link: split anyway


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    small_sizes(monkeypatch)


def seeded_file(directory: Path, name: str, size: int, seed: int) -> Path:
    """A file of ``size`` pseudo-random bytes, the same on every run."""
    path = directory / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


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


def test_a_big_file_comes_in_pieces_over_four_connections_and_is_verified(
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
    assert log[0]["Range"] == "bytes=0-" and "If-Range" not in log[0]  # it carries piece 0
    assert sorted(h["Range"] for h in log[1:]) == [f"bytes={s}-{e - 1}" for s, e in PIECES[1:]]
    assert all(h["If-Range"] == f'"{info.md5}"' for h in log[1:])
    assert events[-1].transferred == SIZE
    assert leftovers(out) == []  # no .part, no .ranges


def test_each_connection_is_kept_for_its_pieces(
    client: updl.Client, relay: Relay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """25 pieces over 4 connections: a handshake per piece would open 25."""
    monkeypatch.setattr(ranged, "PIECE_SIZE", 256 * 1024)
    source = seeded_file(tmp_path, "many.bin", SIZE, seed=1)
    client.upload(source, "many.bin")
    relay.reset()
    log = spy(monkeypatch, client)
    info = client.download("many.bin", tmp_path / "many.bin")
    assert info.md5 == md5_hex(source) == md5_hex(tmp_path / "many.bin")
    assert len(log) == 25
    assert relay.accepted <= 5  # four workers' sessions, and the first answer's connection


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


def test_a_short_link_is_one_stream(
    client: updl.Client, make_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first answer quicker than ``PARALLEL_MIN_RTT`` (loopback, a LAN): one stream, where four
    were measured slower; the same download behind a 20 ms link comes in pieces."""
    source = make_file("near.bin", 3 * MIB)
    client.upload(source, "near.bin")
    monkeypatch.setattr(ranged, "PARALLEL_MIN_RTT", 10.0)  # every answer here is quicker than that
    log = spy(monkeypatch, client)
    info = client.download("near.bin", tmp_path / "near.bin")
    assert info.md5 == md5_hex(source) and len(log) == 1
    monkeypatch.setattr(ranged, "PARALLEL_MIN_RTT", 0.0)
    client.download("near.bin", tmp_path / "far.bin")
    assert len(log) > 2  # pieces: the first answer and more GETs


def breaking(client: updl.Client, monkeypatch: pytest.MonkeyPatch, broken: int, after: list[int]) -> threading.Event:
    """Make piece ``broken`` fail after 512 KiB, once the pieces ``after`` are all received.

    Returns the event set when they were (so the test can tell the order really was out of order).
    """
    transport = client._transport
    send: Request = type(transport).request.__get__(transport)
    starts = {PIECES[i][0]: i for i in [broken, *after]}
    finished: set[int] = set()
    all_in = threading.Event()
    lock = threading.Lock()

    def request(method: str, path: str, **kwargs: Any) -> requests.Response:
        response = send(method, path, **kwargs)
        first = str((kwargs.get("headers") or {}).get("Range", ""))[6:].partition("-")[0]
        index = starts.get(int(first)) if first.isdigit() else None
        if index is None:
            return response
        whole = response.iter_content

        def watched(size: int | None = 1, decode_unicode: bool = False) -> Iterator[Any]:
            received = 0
            for chunk in whole(size, decode_unicode):
                yield chunk
                received += len(chunk)
                if index == broken and received >= MIB // 2:
                    all_in.wait(30)  # the others are being received on their own connections
                    raise requests.exceptions.ChunkedEncodingError("connection broken")
            with lock:  # the worker has written every chunk it was given
                finished.add(index)
                if finished >= set(after):
                    all_in.set()

        response.iter_content = watched  # type: ignore[method-assign,assignment]
        return response

    monkeypatch.setattr(transport, "request", request)
    return all_in


def interrupted(client: updl.Client, target: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A download whose piece 1 breaks after 512 KiB, when pieces 2 and 3 are complete; returns the
    ranges record it leaves."""
    all_in = breaking(client, monkeypatch, broken=1, after=[2, 3])
    with pytest.raises(ConnectionFailedError):
        client.download("cut.bin", target, retries=0)
    assert all_in.is_set()
    monkeypatch.undo()
    small_sizes(monkeypatch)
    records = [p for p in target.parent.iterdir() if p.name.endswith(".ranges")]
    assert len(records) == 1
    record: dict[str, Any] = json.loads(records[0].read_text())
    have = [tuple(i) for i in record["have"]]
    assert any(s <= PIECES[1][0] and PIECES[1][0] + MIB // 2 <= e < PIECES[1][1] for s, e in have)  # kept
    assert any(s <= PIECES[2][0] and PIECES[3][1] <= e for s, e in have)  # complete before piece 1
    return record


def holes(record: dict[str, Any]) -> list[tuple[int, int]]:
    """The byte ranges the record says are missing."""
    missing, position = [], 0
    for start, end in record["have"]:
        if start > position:
            missing.append((position, start))
        position = end
    return [*missing, (position, SIZE)] if position < SIZE else missing


def test_an_interrupted_download_fetches_only_what_is_missing(
    client: updl.Client, relay: Relay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = seeded_file(tmp_path, "cut.bin", SIZE, seed=2)
    client.upload(source, "cut.bin")
    target = tmp_path / "dl" / "cut.bin"
    record = interrupted(client, target, monkeypatch)
    missing = holes(record)
    relay.reset()
    log = spy(monkeypatch, client)
    events: list[updl.ProgressEvent] = []
    info = client.download("cut.bin", target, retries=0, on_progress=events.append)
    assert info.md5 == md5_hex(source) == md5_hex(target)
    asked = sorted(tuple(int(x) for x in h["Range"][6:].split("-")) for h in log)
    pieces = [(s, min(e, s + MIB)) for start, e in missing for s in range(start, e, MIB)]
    assert asked == [(s, e - 1) for s, e in pieces]  # every missing byte once, nothing else
    assert all(h["If-Range"] == record["etag"] for h in log)
    assert events[0].transferred == SIZE - sum(e - s for s, e in missing) and events[-1].transferred == SIZE
    served = sum(e - s for s, e in missing)
    assert served <= relay.down < served + len(log) * 2048  # the bodies and their headers: nothing twice
    assert leftovers(target.parent) == []


def test_a_record_of_an_older_format_is_discarded(
    client: updl.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older updl recorded one range per connection: the .part starts over from 0, correctly."""
    source = seeded_file(tmp_path, "cut.bin", SIZE, seed=3)
    client.upload(source, "cut.bin")
    target = tmp_path / "cut.bin"
    record = interrupted(client, target, monkeypatch)
    step = -(-SIZE // 4)
    old = {key: record[key] for key in ("etag", "md5", "size")}
    old["ranges"] = [[s, min(SIZE, s + step), min(SIZE, s + step)] for s in range(0, SIZE, step)]
    (sidecar,) = [p for p in tmp_path.iterdir() if p.name.endswith(".ranges")]
    sidecar.write_text(json.dumps(old))  # claims everything is there
    log = spy(monkeypatch, client)
    info = client.download("cut.bin", target, retries=0)
    assert info.md5 == md5_hex(source) == md5_hex(target)
    assert log[0] == {"Range": "bytes=0-"}
    assert sorted(h["Range"] for h in log[1:]) == [f"bytes={s}-{e - 1}" for s, e in PIECES[1:]]
    assert leftovers(tmp_path) == []


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


def test_bytes_spoiled_on_disk_are_caught_before_the_rename_and_the_part_starts_over(
    client: updl.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = seeded_file(tmp_path, "cut.bin", SIZE, seed=4)
    client.upload(source, "cut.bin")
    target = tmp_path / "cut.bin"
    interrupted(client, target, monkeypatch)
    (part,) = [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    with part.open("r+b") as f:  # pieces 2 and 3 are recorded as received: spoil a byte of them
        f.seek(PIECES[2][0] + 5)
        byte = f.read(1)
        f.seek(PIECES[2][0] + 5)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ChecksumMismatchError):
        client.download("cut.bin", target, retries=0)
    assert not target.exists() and leftovers(tmp_path) == []  # emptied (and so removed), no record
    log = spy(monkeypatch, client)
    info = client.download("cut.bin", target, retries=0)
    assert info.md5 == md5_hex(source) == md5_hex(target)
    assert log[0] == {"Range": "bytes=0-"}  # from 0
