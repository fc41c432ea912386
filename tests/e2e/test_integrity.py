"""Checksums really fail and are really retried: corruption in transit and on the server's disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import pytest

import updl
from tests.support.files import md5_hex
from tests.support.live_server import LiveServer
from tests.support.relay import Relay


def proxy_for(server: LiveServer, mode: Literal["once", "always"]) -> Relay:
    return Relay(urlsplit(server.url).port or 80, corrupt=mode)


def test_upload_corrupted_once_is_retried_and_stored_intact(
    live_server: LiveServer, token: str, make_file, tmp_path: Path
) -> None:
    source = make_file(size=512 * 1024)
    proxy = proxy_for(live_server, "once")
    retries: list[updl.RetryEvent] = []
    try:
        with updl.Client(proxy.url, token, sleep=lambda _s: None) as client:
            info = client.upload(source, "corrupted-once", on_retry=retries.append)
    finally:
        proxy.close()

    assert proxy.flipped == 1
    assert len(retries) == 1
    assert isinstance(retries[0].error, updl.ChecksumMismatchError)
    assert info.md5 == md5_hex(source)
    with updl.Client(live_server.url, token) as client:
        client.download("corrupted-once", tmp_path / "back")
    assert md5_hex(tmp_path / "back") == md5_hex(source)


def test_cli_upload_corrupted_every_time_exits_5_and_stores_nothing(
    live_server: LiveServer, token: str, make_file, run_updl
) -> None:
    source = make_file(size=128 * 1024)
    proxy = proxy_for(live_server, "always")
    try:
        result = run_updl(
            live_server, token, "put", str(source), "--name", "always-bad", "--retries", "2", url=proxy.url
        )
    finally:
        proxy.close()

    assert result.returncode == 5, result.stderr
    assert result.stderr.count("retrying") == 2
    assert result.stderr.strip().splitlines()[-1].startswith("updl: error:")
    listing = run_updl(live_server, token, "--json", "ls")
    assert listing.returncode == 0
    assert "always-bad" not in [json.loads(line)["name"] for line in listing.stdout.splitlines()]


def test_corrupt_blob_on_server_disk_fails_download_and_leaves_no_file(
    server_factory, make_file, run_updl, tmp_path: Path
) -> None:
    server = server_factory()
    token = server.add_user("alice")
    source = make_file(size=200 * 1024)
    assert run_updl(server, token, "put", str(source), "--name", "victim").returncode == 0

    blobs = [
        p
        for p in (server.data_dir / "blobs").rglob("*")
        if p.is_file() and "tmp" not in p.relative_to(server.data_dir / "blobs").parts
    ]
    assert len(blobs) == 1
    data = bytearray(blobs[0].read_bytes())
    data[1000] ^= 0xFF
    blobs[0].write_bytes(bytes(data))

    out_dir = tmp_path / "downloads"
    out_dir.mkdir()
    result = run_updl(server, token, "get", "victim", "-o", str(out_dir / "victim"), "--retries", "1")
    assert result.returncode == 5, result.stderr
    assert "checksum" in result.stderr.lower()
    assert list(out_dir.iterdir()) == []


def test_sdk_download_mismatch_raises_and_keeps_existing_destination(server_factory, make_file, tmp_path: Path) -> None:
    server = server_factory()
    token = server.add_user("bob")
    source = make_file(size=64 * 1024)
    with updl.Client(server.url, token, sleep=lambda _s: None) as client:
        client.upload(source, "doc")
        blob = next(
            p
            for p in (server.data_dir / "blobs").rglob("*")
            if p.is_file() and "tmp" not in p.relative_to(server.data_dir / "blobs").parts
        )
        corrupted = bytearray(blob.read_bytes())
        corrupted[0] ^= 0xFF
        blob.write_bytes(bytes(corrupted))
        dest = tmp_path / "doc"
        dest.write_bytes(b"previous good version")
        with pytest.raises(updl.ChecksumMismatchError) as caught:
            client.download("doc", dest, retries=2)
    assert caught.value.attempts == 3
    assert dest.read_bytes() == b"previous good version"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc", "src"]
