"""Fixtures for unit tests: a scripted server (``responses``, ordered) and a client that never sleeps."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import pytest
import responses
from responses.registries import OrderedRegistry

from updl import Client, RetryPolicy

URL = "http://updl.test"
TOKEN = "t0ken-secret"


def file_info(name: str, data: bytes, **extra: object) -> dict[str, object]:
    """The server's FileInfo JSON for ``data`` stored as ``name``."""
    return {"name": name, "size": len(data), "md5": hashlib.md5(data).hexdigest(),
            "created": "2026-11-27T21:42:47.123456Z", "last_accessed": None, **extra}


def download_headers(data: bytes, *, md5_of: bytes | None = None) -> dict[str, str]:
    """Headers of ``GET /files/{name}``; ``md5_of`` lets a test announce the MD5 of other bytes."""
    digest = hashlib.md5(data if md5_of is None else md5_of)
    return {"Content-MD5": base64.b64encode(digest.digest()).decode(),
            "ETag": f'"{digest.hexdigest()}"',
            "Last-Modified": "Fri, 27 Nov 2026 21:42:47 GMT",
            "Content-Length": str(len(data))}


class SleepRecorder:
    """An injectable ``sleep`` that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def server() -> Iterator[responses.RequestsMock]:
    """A scripted server: registered answers are used once each, in order."""
    with responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def client(sleeps: SleepRecorder) -> Iterator[Client]:
    with Client(URL, TOKEN, retry=RetryPolicy(retries=3), sleep=sleeps) as c:
        yield c
