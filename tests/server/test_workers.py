"""Stateless workers: server processes sharing one data dir and one database act as one service."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.api import Api, md5_hex, temp_files
from tests.support.live_server import LISTENING, LiveServer, clean_env, console_script
from tests.support.racing import all_at_once, committed_blobs
from tests.support.waiting import wait_for


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh catalog database of each kind, outside any data dir."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    url: str = request.getfixturevalue("pg_database")
    return url


@pytest.fixture
def servers(tmp_path: Path, db_url: str) -> Iterator[list[LiveServer]]:
    """Two single-process ``updl-server run`` on one data dir and one database."""
    data_dir = tmp_path / "shared-data"
    started: list[LiveServer] = []
    try:
        for _ in range(2):
            server = LiveServer(data_dir=data_dir, args=("--db-url", db_url, "--workers", "1"))
            server.start()
            started.append(server)
        yield started
    finally:
        for server in started:
            server.stop()


def process_dirs(data_dir: Path) -> list[Path]:
    """The per-process temp dirs of the blob store (one per live server process)."""
    tmp = data_dir / "blobs" / "tmp"
    return [p for p in tmp.iterdir() if p.is_dir() and not p.name.startswith(".")]


def test_two_processes_are_one_service(servers: list[LiveServer]) -> None:
    """Upload through one, read through the other, delete through the first, 404 from the second."""
    one_server, other_server = servers
    token = one_server.add_user("shared")
    one, other = Api(one_server.url, token), Api(other_server.url, token)
    assert len(process_dirs(one_server.data_dir)) == 2  # each process has its own temp dir
    data = os.urandom(500_000)
    stored = one.upload("a/b.bin", data)
    assert other.names() == ["a/b.bin"]
    assert other.request("GET", "/info/a/b.bin").json()["md5"] == stored["md5"]
    assert other.get("a/b.bin").content == data
    replaced = other.upload("a/b.bin", b"from the other one")
    assert one.get("a/b.bin").headers["ETag"] == f'"{replaced["md5"]}"'
    assert len(committed_blobs(one_server.data_dir)) == 1
    assert one.request("DELETE", "/files/a/b.bin").status_code == 204
    assert other.get("a/b.bin").status_code == 404
    assert other.request("GET", "/info/a/b.bin").status_code == 404
    assert other.names() == []
    assert committed_blobs(one_server.data_dir) == []


def _children(pid: int) -> list[int]:
    """Child process ids of ``pid`` (Linux)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_start_serve_and_stop(tmp_path: Path, db_url: str) -> None:
    """``--workers 2``: one announced URL, two workers each with its own temp dir, concurrent
    requests served, and SIGTERM to the parent stops both cleanly (exit 0, temp dirs removed)."""
    server = LiveServer(data_dir=tmp_path / "data", args=("--workers", "2", "--db-url", db_url))
    server.start()
    try:
        assert server.process is not None
        wait_for(lambda: len(process_dirs(server.data_dir)) == 2, "both workers to start")
        workers = _children(server.process.pid)
        assert len(workers) == 2
        api = Api(server.url, server.add_user("w"))
        contents = [os.urandom(200_000 + i) for i in range(8)]

        def transfer(i: int) -> str:
            own = Api(api.base, api.token)
            own.upload(f"f{i}", contents[i])
            return md5_hex(own.get(f"f{i}").content)

        results = all_at_once([functools.partial(transfer, i) for i in range(8)])
        assert results == [md5_hex(c) for c in contents]
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=20) == 0
    finally:
        server.stop()
    assert not any(_alive(pid) for pid in workers)
    assert process_dirs(server.data_dir) == []  # each worker ran its shutdown
    assert temp_files(server.data_dir) == []
    assert sum(bool(LISTENING.search(line)) for line in server.log) == 1


def test_workers_auto_is_one_per_usable_cpu(tmp_path: Path) -> None:
    """``--workers auto`` forks one worker per CPU the server may use (one CPU: it serves in its
    own process); ``--workers 0`` and ``--workers many`` are usage errors."""
    from updl_server.workers import usable_cpus

    expected = usable_cpus()
    server = LiveServer(data_dir=tmp_path / "data", args=("--workers", "auto"))
    server.start()
    try:
        assert server.process is not None
        wait_for(lambda: len(process_dirs(server.data_dir)) == expected, f"{expected} worker(s) to start")
        assert len(_children(server.process.pid)) == (0 if expected == 1 else expected)
        assert Api(server.url, server.add_user("d")).names() == []
    finally:
        server.stop()
    for bad in ("0", "many"):
        refused = subprocess.run(
            [console_script("updl-server"), "run", "--workers", bad, "--data-dir", str(tmp_path / "x")],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
        )
        assert refused.returncode == 2 and "--workers" in refused.stderr, refused.stderr


def test_workers_stop_when_the_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL to the parent (no chance to pass SIGTERM on) still stops every worker: none is
    left serving the port behind a supervisor that restarts the service."""
    server = LiveServer(data_dir=tmp_path / "data", args=("--workers", "2"))
    server.start()
    try:
        assert server.process is not None
        wait_for(lambda: len(process_dirs(server.data_dir)) == 2, "both workers to start")
        workers = _children(server.process.pid)
        assert len(workers) == 2
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=20)
        wait_for(lambda: not any(_alive(pid) for pid in workers), "the workers to stop with their parent")
        with pytest.raises(requests.ConnectionError):
            requests.get(server.url + "/health", timeout=5)
    finally:
        server.stop()


def test_sweep_tolerates_another_process_starting_and_deleting(tmp_path: Path) -> None:
    """A starting worker's sweep races its siblings: their ``.new-`` dirs get renamed and
    replaced blobs get deleted between listing and ``stat``; the sweep must not crash (a
    crash fails the worker's startup and takes the whole service down), nor disturb them."""
    from updl_server.storage import LocalBlobStore

    root = tmp_path / "blobs"
    sweeper = LocalBlobStore(root)
    sweeper.start()
    stop = time.monotonic() + 2.0
    sibling_errors: list[BaseException] = []

    def churn() -> None:
        # What sibling processes do: start (staging dir renamed once locked) and replace blobs.
        try:
            while time.monotonic() < stop:
                sibling = LocalBlobStore(root)
                sibling.start()
                writer = sibling.begin()
                writer.write(b"x")
                sibling.delete(writer.commit())
                sibling.close()
        except BaseException as exc:  # noqa: BLE001 - asserted below
            sibling_errors.append(exc)

    churner = threading.Thread(target=churn, daemon=True)
    churner.start()
    sweeps = 0
    try:
        while time.monotonic() < stop:
            sweeper.sweep(lambda location: False)
            sweeps += 1
    finally:
        churner.join(10)
        sweeper.close()
    assert sibling_errors == []
    assert sweeps > 10
