"""Local-filesystem steps shared by the blob store and the staging area."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Persist a rename: the directory entry is durable only once the directory is synced."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def older_than(path: Path, cutoff: float) -> bool:
    """Whether ``path`` was last modified before ``cutoff``; ``False`` if it is gone.

    Several processes share a data dir: between listing a directory and
    ``stat`` another one may rename or delete the entry.
    """
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False
