"""Fixtures for the interop tests: public clients (curl, wget, aria2c, tus-js-client) vs. a server.

The helpers are in ``tests/support/interop.py``.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import updl
from tests.support.api import Api
from tests.support.files import md5_hex
from tests.support.interop import MIB, require_tool, run_tool, write_pattern
from tests.support.live_server import LiveServer

HERE = Path(__file__).parent


@pytest.fixture
def api(live_server: LiveServer, token: str) -> Api:
    """The same user as ``token``, to check what the server stored."""
    return Api(live_server.url, token)


@pytest.fixture
def pattern_file(tmp_path: Path) -> Callable[..., Path]:
    """``pattern_file(name, size)``: a deterministic file under ``tmp_path/src``."""

    def make(name: str = "sample.bin", size: int = MIB + 123) -> Path:
        return write_pattern(tmp_path / "src" / name, size, seed=name)

    return make


@pytest.fixture
def stored(live_server: LiveServer, token: str, pattern_file: Callable[..., Path]) -> Callable[..., Path]:
    """``stored(name, size)``: a file uploaded with the updl SDK; returns the local original."""

    def store(name: str = "stored.bin", size: int = 3 * MIB + 5) -> Path:
        source = pattern_file(name.replace("/", "_"), size)
        with updl.Client(live_server.url, token) as client:
            assert client.upload(source, name).md5 == md5_hex(source)
        return source

    return store


@pytest.fixture(scope="session")
def tus_js() -> Callable[..., dict[str, Any]]:
    """``tus_js(**args)``: run ``tus_upload.mjs`` (tus-js-client) once; its JSON result.

    Installs the pinned tus-js-client with ``npm ci`` once per session if it is missing.
    """
    node = require_tool("node")
    # Test processes run side by side (pytest-xdist): one installs while the others wait.
    with open(HERE / ".npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (HERE / "node_modules" / "tus-js-client" / "package.json").exists():
            npm = require_tool("npm")
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=HERE,
                capture_output=True,
                text=True,
                timeout=300,
                stdin=subprocess.DEVNULL,
            )
            assert result.returncode == 0, f"npm ci failed:\n{result.stdout}{result.stderr}"

    def run(**args: Any) -> dict[str, Any]:
        result = run_tool(node, str(HERE / "tus_upload.mjs"), json.dumps(args))
        assert result.returncode == 0, f"tus_upload.mjs crashed:\n{result.stdout}{result.stderr}"
        out: dict[str, Any] = json.loads(result.stdout)
        return out

    return run
