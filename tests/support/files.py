"""Helpers for files on disk."""

from __future__ import annotations

import hashlib
from pathlib import Path


def md5_hex(path: Path) -> str:
    """MD5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
