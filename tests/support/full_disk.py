"""A server on a real full disk: a small tmpfs, mounted for the test and filled until ENOSPC.

The ``disk`` fixture (in ``tests/conftest.py``) mounts it. Mounting needs root (CI runs as
root); elsewhere the tests that use ``disk`` skip, and with ``CI=true`` they fail instead,
as the PostgreSQL tests do.
"""

from __future__ import annotations

import errno
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.live_server import LiveServer

DISK_SIZE = "24m"


@dataclass
class FullDisk:
    """A server on a disk that ``fill`` fills up and ``free`` empties again."""

    server: LiveServer
    api: Api
    filler: Path

    def fill(self) -> None:
        """Write zeros until the filesystem has not one byte left."""
        chunk = b"\0" * 65536
        with open(self.filler, "ab", buffering=0) as out:
            try:
                while True:
                    out.write(chunk)  # a short write near the end, then ENOSPC
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
        assert os.statvfs(self.filler).f_bavail == 0

    def free(self) -> None:
        """Give the space back."""
        self.filler.unlink()


def mount_tmpfs(mount_point: Path) -> None:
    """Mount a ``DISK_SIZE`` tmpfs at ``mount_point``; skip (fail with ``CI=true``) if not allowed."""
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0700", "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        problem = result.stderr.strip() if result.returncode != 0 else None
    except OSError as exc:  # no mount(8) at all
        problem = str(exc)
    if problem is not None:
        message = f"cannot mount a tmpfs to fill (needs root): {problem}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
