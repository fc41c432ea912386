"""Fixtures for end-to-end tests: sample files and a way to run the installed ``updl``."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.live_server import LiveServer, clean_env, console_script


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

    def run(server: LiveServer | str, token: str, *args: str, url: str | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        base = url or (server if isinstance(server, str) else server.url)
        env = clean_env(UPDL_URL=base, UPDL_TOKEN=token)
        return subprocess.run([console_script("updl"), *args], capture_output=True, text=True,
                              env=env, cwd=cwd, timeout=120, stdin=subprocess.DEVNULL)

    return run
