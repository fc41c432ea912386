"""Interrupted transfers resume: `updl put` over tus after a kill or a server crash, and `updl get`
from its temporary file — each time sending fewer bytes than the file, and each result verified."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.files import md5_hex
from tests.support.live_server import LiveServer, clean_env, console_script
from tests.support.relay import Relay
from tests.support.waiting import wait_for

MIB = 1024 * 1024
UPLOAD_SIZE = 24 * MIB
DOWNLOAD_SIZE = 8 * MIB
WAIT = 30.0


_users = iter(range(1, 1000))


@pytest.fixture
def server(request: pytest.FixtureRequest) -> LiveServer:
    """The session's server, or a private one for tests that crash it (marked ``own_server``)."""
    if request.node.get_closest_marker("own_server"):
        factory: Callable[..., LiveServer] = request.getfixturevalue("server_factory")
        return factory()
    shared: LiveServer = request.getfixturevalue("live_server")
    return shared


@pytest.fixture
def relay(server: LiveServer) -> Iterator[Relay]:
    proxy = Relay(int(server.url.rsplit(":", 1)[1]))
    yield proxy
    proxy.close()


@pytest.fixture
def updl(tmp_path: Path, relay: Relay, server: LiveServer) -> Callable[..., subprocess.Popen[Any]]:
    """Start the installed ``updl`` through the relay, with 1 MiB tus chunks."""
    config = tmp_path / "config.toml"
    config.write_text('[default]\nresumable_chunk_size = "1MiB"\n')
    token = server.add_user(f"resumer{next(_users)}-{os.getpid()}")

    def start(*args: str, text: bool = True) -> subprocess.Popen[Any]:
        env = clean_env(UPDL_URL=relay.url, UPDL_TOKEN=token, UPDL_CONFIG=str(config))
        return subprocess.Popen(
            [console_script("updl"), *args],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=text,
        )

    start.token = token  # type: ignore[attr-defined]
    return start


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def resume_entries() -> dict[str, dict[str, object]]:
    path = Path(os.environ["XDG_CACHE_HOME"]) / "updl" / "resume.json"
    try:
        return json.loads(path.read_text())["uploads"]
    except (OSError, ValueError, KeyError):
        return {}


def server_offset(server: LiveServer, token: str) -> int:
    entries = resume_entries()
    if not entries:
        return 0
    url = next(iter(entries.values()))["url"]
    response = requests.head(
        f"{server.url}{url}", timeout=10, headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    )
    return int(response.headers.get("Upload-Offset", 0))


def stored_md5(server: LiveServer, token: str, name: str) -> str:
    response = requests.get(f"{server.url}/files/{name}", timeout=30, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return hashlib.md5(response.content).hexdigest()


def interrupted_put(updl: Callable[..., subprocess.Popen[str]], relay: Relay, server: LiveServer, source: Path) -> int:
    """Start `updl put`, let it send some chunks, stall it and kill it; return the server's offset."""
    relay.stall_up_after = 5 * MIB
    process = updl("put", str(source), "--resumable-threshold", "16MiB")
    wait_for(relay.stalled.is_set, "the upload to stall")
    offset = server_offset(server, updl.token)  # type: ignore[attr-defined]
    process.kill()
    process.communicate(timeout=30)  # reaps it and closes its pipes
    relay.drop_connections()
    relay.reset()
    assert 0 < offset < source.stat().st_size
    return offset


def test_put_resumes_after_the_client_is_killed(
    updl: Callable[..., subprocess.Popen[str]], relay: Relay, server: LiveServer, make_file: Callable[..., Path]
) -> None:
    source = make_file("big.bin", UPLOAD_SIZE)
    offset = interrupted_put(updl, relay, server, source)
    code, _, err = finish(updl("put", str(source), "--resumable-threshold", "16MiB"))
    assert code == 0, err
    assert "updl: uploading big.bin (" in err and ", resuming at " in err  # says it is not starting over
    assert relay.up < UPLOAD_SIZE  # the prefix the server had was not sent again
    assert relay.up >= UPLOAD_SIZE - offset
    assert stored_md5(server, updl.token, "big.bin") == md5_hex(source)  # type: ignore[attr-defined]
    assert resume_entries() == {}  # complete: forgotten


@pytest.mark.own_server
def test_put_resumes_after_a_server_crash(
    updl: Callable[..., subprocess.Popen[str]], relay: Relay, server: LiveServer, make_file: Callable[..., Path]
) -> None:
    source = make_file("big.bin", UPLOAD_SIZE)
    interrupted_put(updl, relay, server, source)
    server.stop(kill=True)  # kill -9: staged bytes past the catalog's offset stay behind
    server.start()
    relay.retarget(int(server.url.rsplit(":", 1)[1]))
    code, _, err = finish(updl("put", str(source), "--resumable-threshold", "16MiB"))
    assert code == 0, err
    assert relay.up < UPLOAD_SIZE
    assert stored_md5(server, updl.token, "big.bin") == md5_hex(source)  # type: ignore[attr-defined]


def test_small_files_still_go_in_one_request(
    updl: Callable[..., subprocess.Popen[str]], relay: Relay, server: LiveServer, make_file: Callable[..., Path]
) -> None:
    source = make_file("small.bin", 100_000)
    staging = server.data_dir / "blobs" / "staging"
    before = set(staging.iterdir()) if staging.exists() else set()
    code, _, err = finish(updl("put", str(source), "--resumable-threshold", "16MiB"))
    assert code == 0, err
    assert resume_entries() == {}
    assert (set(staging.iterdir()) if staging.exists() else set()) == before  # no tus upload made


def store(server: LiveServer, token: str, source: Path) -> None:
    response = requests.put(
        f"{server.url}/files/data.bin",
        data=source.read_bytes(),
        timeout=30,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text


@pytest.fixture
def remote(updl: Callable[..., subprocess.Popen[str]], server: LiveServer, make_file: Callable[..., Path]) -> Path:
    """An 8 MiB file stored as 'data.bin'."""
    source = make_file("data.bin", DOWNLOAD_SIZE)
    store(server, updl.token, source)  # type: ignore[attr-defined]
    return source


def cut_get(updl: Callable[..., subprocess.Popen[str]], relay: Relay, tmp_path: Path) -> Path:
    """A `updl get` whose connection is cut after 3 MiB; returns the temporary file it leaves."""
    relay.reset()
    relay.cut_down_after = 3 * MIB
    code, _, err = finish(updl("get", "data.bin", "-o", "out.bin", "--retries", "0"))
    assert code == 6, err
    [part] = tmp_path.glob(".out.bin.updl-*.part")
    assert 0 < part.stat().st_size < DOWNLOAD_SIZE and not (tmp_path / "out.bin").exists()
    relay.reset()
    return part


def test_get_resumes_from_the_part_file(
    updl: Callable[..., subprocess.Popen[str]], relay: Relay, remote: Path, tmp_path: Path
) -> None:
    part = cut_get(updl, relay, tmp_path)
    kept = part.stat().st_size
    code, _, err = finish(updl("get", "data.bin", "-o", "out.bin"))
    assert code == 0, err
    assert DOWNLOAD_SIZE - kept <= relay.down < DOWNLOAD_SIZE
    assert md5_hex(tmp_path / "out.bin") == md5_hex(remote) and not part.exists()


def test_get_restarts_when_the_file_changed(
    updl: Callable[..., subprocess.Popen[str]], relay: Relay, server: LiveServer, remote: Path, tmp_path: Path
) -> None:
    part = cut_get(updl, relay, tmp_path)
    remote.write_bytes(os.urandom(DOWNLOAD_SIZE))  # a new version under the same name
    store(server, updl.token, remote)  # type: ignore[attr-defined]
    code, _, err = finish(updl("get", "data.bin", "-o", "out.bin"))
    assert code == 0, err
    assert relay.down >= DOWNLOAD_SIZE  # If-Range did not match: the whole file came (200)
    assert md5_hex(tmp_path / "out.bin") == md5_hex(remote) and not part.exists()


def test_get_detects_a_corrupt_part_and_starts_over(
    updl: Callable[..., subprocess.Popen[str]], relay: Relay, remote: Path, tmp_path: Path
) -> None:
    part = cut_get(updl, relay, tmp_path)
    kept = part.stat().st_size
    with open(part, "r+b") as f:
        f.seek(kept // 2)
        byte = f.read(1)
        f.seek(kept // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    code, _, err = finish(updl("get", "data.bin", "-o", "out.bin"))
    assert code == 0, err
    assert "checksum mismatch" in err  # the first attempt's whole-file check caught it
    assert relay.down >= DOWNLOAD_SIZE + (DOWNLOAD_SIZE - kept)  # the rest, then all of it again
    assert md5_hex(tmp_path / "out.bin") == md5_hex(remote) and not part.exists()


def test_a_second_get_to_the_same_destination_is_refused(
    updl: Callable[..., subprocess.Popen[str]], remote: Path, relay: Relay, tmp_path: Path
) -> None:
    part = cut_get(updl, relay, tmp_path)
    with open(part, "rb") as held:  # as a running `updl get` to out.bin holds it
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        code, _, err = finish(updl("get", "data.bin", "-o", "out.bin"))
    assert code == 1 and "in progress" in err
    assert not (tmp_path / "out.bin").exists()


def test_stdout_download_is_unchanged(updl: Callable[..., subprocess.Popen[Any]], remote: Path, tmp_path: Path) -> None:
    process = updl("get", "data.bin", "-o", "-", text=False)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert out == remote.read_bytes()
    assert not list(tmp_path.glob("*.part"))
