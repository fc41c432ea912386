"""Helpers for the interop tests: find and run a public client, deterministic files, comparisons.

A missing client skips its tests locally (``bash scripts/install-interop-tools.sh`` installs
them all), except under ``CI=true``, where a missing client is a broken CI script and fails,
as the PostgreSQL tests do.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import updl
from tests.support.files import md5_hex  # noqa: F401  (the interop tests import it from here)
from tests.support.live_server import LiveServer

MIB = 1024 * 1024
TIMEOUT = 120  # seconds for one client run: a hung client fails the test instead of the session
INSTALL_HINT = "run: bash scripts/install-interop-tools.sh"


def require_tool(name: str) -> str:
    """Path of the executable ``name``; skip without it (fail with ``CI=true``)."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed; {INSTALL_HINT}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {message} (.ci/run must install it)")
        pytest.skip(message)
    return found


def write_pattern(path: Path, size: int, seed: str) -> Path:
    """Write ``size`` bytes derived from ``seed`` (SHA-256 in counter mode), block by block.

    Deterministic and different at every offset, so a byte out of place changes the MD5.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        counter, left = 0, size
        while left:
            block = b"".join(hashlib.sha256(f"{seed}/{counter + i}".encode()).digest() for i in range(2048))  # 64 KiB
            counter += 2048
            fh.write(block[:left])
            left -= min(left, len(block))
    return path


def write_prefix(source: Path, dest: Path, length: int) -> None:
    """Write the first ``length`` bytes of ``source`` to ``dest``: a download cut short."""
    with open(source, "rb") as src, open(dest, "wb") as out:
        while length:
            chunk = src.read(min(length, MIB))
            assert chunk, f"{source} is shorter than {length} more bytes"
            out.write(chunk)
            length -= len(chunk)


def flipped(md5: str) -> str:
    """A well-formed MD5 that is certainly not ``md5``: every bit flipped."""
    return bytes(b ^ 0xFF for b in bytes.fromhex(md5)).hex()


def same_bytes(a: Path, b: Path) -> bool:
    """Whether two files hold exactly the same bytes (compared in chunks)."""
    return filecmp.cmp(a, b, shallow=False)


def sdk_download(server: LiveServer, token: str, name: str, dest: Path) -> updl.FileInfo:
    """Download ``name`` with the updl SDK (which verifies the MD5) into ``dest``."""
    with updl.Client(server.url, token) as client:
        return client.download(name, dest)


def run_tool(*cmd: str, cwd: Path | None = None, stdin: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a client to completion (bounded), capturing its output; ``stdin``: a file to feed it."""
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as feed:
        return subprocess.run(list(cmd), capture_output=True, text=True, cwd=cwd, timeout=TIMEOUT, stdin=feed)
