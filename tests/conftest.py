"""Shared fixtures: a real ``updl-server`` process on a free port, users, a clean environment."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.full_disk import FullDisk, mount_tmpfs
from tests.support.live_server import LiveServer


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
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
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
