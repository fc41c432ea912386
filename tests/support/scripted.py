"""Helpers for tests against a scripted server (``responses``): its URL, answers, a sleep recorder."""

from __future__ import annotations

import base64
import hashlib

URL = "http://updl.test"
TOKEN = "t0ken-secret"


def file_info(name: str, data: bytes, **extra: object) -> dict[str, object]:
    """The server's FileInfo JSON for ``data`` stored as ``name``."""
    return {
        "name": name,
        "size": len(data),
        "md5": hashlib.md5(data).hexdigest(),
        "created": "2026-11-27T21:42:47.123456Z",
        "last_accessed": None,
        **extra,
    }


def download_headers(data: bytes, *, md5_of: bytes | None = None) -> dict[str, str]:
    """Headers of ``GET /files/{name}``; ``md5_of`` lets a test announce the MD5 of other bytes."""
    digest = hashlib.md5(data if md5_of is None else md5_of)
    return {
        "Content-MD5": base64.b64encode(digest.digest()).decode(),
        "ETag": f'"{digest.hexdigest()}"',
        "Last-Modified": "Fri, 27 Nov 2026 21:42:47 GMT",
        "Content-Length": str(len(data)),
    }


class SleepRecorder:
    """An injectable ``sleep`` that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
