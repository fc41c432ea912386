"""Shared fixtures: a real ``updl-server`` process on a free port, users, a clean environment,
sample files, the installed ``updl``, a full disk. Helpers are in ``tests/support/``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.full_disk import FullDisk, mount_tmpfs
from tests.support.live_server import LiveServer, clean_env, console_script


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's UPDL_* variables, config file or resume cache."""
    for key in list(os.environ):
        if key.startswith("UPDL_"):
            monkeypatch.delenv(key)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))


@pytest.fixture
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LiveServer]]:
    """Start extra servers with their own data dir and arguments: ``server_factory("--max-size", "1000")``."""
    started: list[LiveServer] = []

    def start(*args: str) -> LiveServer:
        server = LiveServer(data_dir=tmp_path_factory.mktemp("server-data"), args=args)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the whole session; isolate tests with a fresh ``user`` each."""
    server = LiveServer(data_dir=tmp_path_factory.mktemp("live-server-data"))
    server.start()
    yield server
    server.stop()


_user_counter = iter(range(1, 1_000_000))


@pytest.fixture
def token(live_server: LiveServer) -> str:
    """A token for a brand-new user on ``live_server``."""
    return live_server.add_user(f"user{next(_user_counter)}")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[FullDisk]:
    """A server whose data dir is on its own small filesystem, with one user."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mount_tmpfs(mount_point)
    server = LiveServer(data_dir=mount_point / "data")
    try:
        server.start()
        yield FullDisk(server, Api(server.url, server.add_user("filled")), mount_point / "filler")
    finally:
        server.stop()
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a file of random bytes (random data always contains NUL bytes) and return its path."""

    def make(name: str = "sample.bin", size: int = 256 * 1024) -> Path:
        path = tmp_path / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        return path

    return make


@pytest.fixture
def run_updl() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed ``updl`` console script against a server as a given token."""

    def run(
        server: LiveServer | str,
        token: str,
        *args: str,
        url: str | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        base = url or (server if isinstance(server, str) else server.url)
        env = clean_env(UPDL_URL=base, UPDL_TOKEN=token, **(env or {}))
        return subprocess.run(
            [console_script("updl"), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    return run
