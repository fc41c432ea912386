"""`updl put --parts N`: a file as N parallel tus parts the server joins, verified, resumable per part."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import updl
from tests.support.files import md5_hex
from tests.support.live_server import LiveServer, clean_env, console_script
from tests.support.relay import Relay
from tests.support.tus import TUS
from tests.support.waiting import wait_for
from updl.sdk.tus_parts import part_ranges

MIB = 1024 * 1024
SIZE = 20 * MIB + 333


@pytest.fixture
def relay(live_server: LiveServer) -> Iterator[Relay]:
    proxy = Relay(int(live_server.url.rsplit(":", 1)[1]))
    yield proxy
    proxy.close()


@pytest.fixture
def updl_cli(tmp_path: Path, relay: Relay, token: str) -> Callable[..., subprocess.Popen[str]]:
    """Start the installed ``updl`` through the relay, with 1 MiB tus chunks."""
    config = tmp_path / "config.toml"
    config.write_text('[default]\nresumable_chunk_size = "1MiB"\n')

    def start(*args: str) -> subprocess.Popen[str]:
        env = clean_env(UPDL_URL=relay.url, UPDL_TOKEN=token, UPDL_CONFIG=str(config))
        return subprocess.Popen(
            [console_script("updl"), *args],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    return start


def part_entries() -> list[dict[str, Any]]:
    path = Path(os.environ["XDG_CACHE_HOME"]) / "updl" / "resume.json"
    try:
        uploads: dict[str, dict[str, Any]] = json.loads(path.read_text())["uploads"]
    except FileNotFoundError:
        return []
    return [entry for key, entry in uploads.items() if "\\npart " in key]


def test_part_ranges_are_whole_chunks_but_the_last() -> None:
    assert part_ranges(10 * MIB + 1, 4, MIB) == [
        (0, 3 * MIB),
        (3 * MIB, 6 * MIB),
        (6 * MIB, 9 * MIB),
        (9 * MIB, 10 * MIB + 1),
    ]
    assert part_ranges(2 * MIB, 8, MIB) == [(0, MIB), (MIB, 2 * MIB)]  # no more parts than chunks
    assert part_ranges(5, 4, MIB) == [(0, 5)]
    assert part_ranges(0, 4, MIB) == [(0, 0)]


@pytest.mark.parametrize("parts", [2, 4])
def test_put_with_parts_stores_the_file_verified(
    live_server: LiveServer, token: str, run_updl, make_file: Callable[..., Path], tmp_path: Path, parts: int
) -> None:
    source = make_file(f"parts{parts}.bin", SIZE)
    put = run_updl(live_server, token, "put", str(source), "--parts", str(parts), "--resumable-threshold", "1MiB")
    assert put.returncode == 0, put.stderr
    got = run_updl(live_server, token, "get", source.name, "-o", str(tmp_path / "copy"))
    assert got.returncode == 0, got.stderr
    assert md5_hex(tmp_path / "copy") == md5_hex(source)
    assert part_entries() == []


def test_sdk_parts_report_progress_up_to_the_size(live_server: LiveServer, token: str, make_file) -> None:
    source = make_file("sdk-parts.bin", SIZE)
    events: list[updl.ProgressEvent] = []
    with updl.Client(live_server.url, token) as client:
        info = client.upload(source, resumable_threshold=0, parts=3, on_progress=events.append)
    assert info.md5 == md5_hex(source) and info.size == SIZE
    assert events[-1].transferred == events[-1].total == SIZE


def test_put_with_parts_resumes_each_part_after_a_kill(
    live_server: LiveServer, token: str, relay: Relay, updl_cli, make_file: Callable[..., Path]
) -> None:
    source = make_file("resumed-parts.bin", SIZE)
    relay.stall_up_after = 8 * MIB
    process = updl_cli("put", str(source), "--parts", "4", "--resumable-threshold", "1MiB")
    wait_for(relay.stalled.is_set, "the upload to stall")
    wait_for(lambda: len(part_entries()) == 4, "the four parts to be remembered")
    process.kill()
    process.communicate(timeout=30)
    relay.drop_connections()
    relay.reset()
    headers = {**TUS, "Authorization": f"Bearer {token}"}
    kept = 0
    for entry in part_entries():
        answer = requests.head(live_server.url + entry["url"], headers=headers, timeout=30)
        assert answer.status_code == 200 and answer.headers["Upload-Concat"] == "partial"
        kept += int(answer.headers["Upload-Offset"])
    assert kept > 0

    second = updl_cli("put", str(source), "--parts", "4", "--resumable-threshold", "1MiB")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "resuming at" in err
    assert relay.up <= SIZE - kept + MIB  # what the server had was not sent again
    with updl.Client(live_server.url, token) as client:
        assert client.info("resumed-parts.bin").md5 == md5_hex(source)
    assert part_entries() == []
