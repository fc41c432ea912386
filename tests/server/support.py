"""Helpers for the server's API tests: an HTTP client, hand-built multipart bodies, data dirs."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

TIMEOUT = 30


def md5_hex(data: bytes) -> str:
    """Hex MD5 of ``data``."""
    return hashlib.md5(data).hexdigest()


def url_name(name: str) -> str:
    """A name for a URL path, dots encoded too: urllib3 would otherwise resolve ``..`` itself."""
    return quote(name, safe="/").replace(".", "%2E")


def multipart(parts: Iterable[tuple[str, bytes] | tuple[str, bytes, str]],
              boundary: str | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body from ``(field, value[, filename])`` parts, and its type."""
    boundary = boundary or uuid.uuid4().hex
    out = bytearray()
    for part in parts:
        field, value = part[0], part[1]
        disposition = f'form-data; name="{field}"'
        if len(part) == 3:
            disposition += f'; filename="{part[2]}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if len(part) == 3:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + value + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


@dataclass
class Api:
    """An authenticated client for one user of one server."""

    base: str
    token: str

    def __post_init__(self) -> None:
        """Open a session that sends the token on every request."""
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Any request relative to the server's URL."""
        kwargs.setdefault("timeout", TIMEOUT)
        return self.session.request(method, self.base + path, **kwargs)

    def put(self, name: str, data: Any, **headers: str) -> requests.Response:
        """``PUT /files/{name}`` with a raw body."""
        return self.request("PUT", f"/files/{url_name(name)}", data=data, headers=headers)

    def post_parts(self, parts: Iterable[tuple[str, bytes] | tuple[str, bytes, str]]
                   ) -> requests.Response:
        """``POST /upload`` with a hand-built multipart body."""
        body, content_type = multipart(parts)
        return self.request("POST", "/upload", data=body, headers={"Content-Type": content_type})

    def upload(self, name: str, data: bytes) -> dict[str, Any]:
        """Store ``data`` under ``name`` (PUT with Content-MD5); assert success, return FileInfo."""
        digest = base64.b64encode(hashlib.md5(data).digest()).decode()
        response = self.put(name, data, **{"Content-MD5": digest})
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, name: str, **headers: str) -> requests.Response:
        """``GET /files/{name}``."""
        return self.request("GET", f"/files/{url_name(name)}", headers=headers)

    def names(self, prefix: str = "") -> list[str]:
        """All the user's file names (first page is enough for tests)."""
        response = self.request("GET", "/files", params={"prefix": prefix})
        assert response.status_code == 200, response.text
        return [f["name"] for f in response.json()["files"]]


def temp_files(data_dir: Path) -> list[Path]:
    """Upload temporaries in a data dir (each process's lock file is not one)."""
    tmp = data_dir / "blobs" / "tmp"
    return [p for p in tmp.rglob("*") if p.is_file() and p.name != "lock"] if tmp.exists() else []


def tree(root: Path, skip: Callable[[Path], bool] = lambda p: False) -> set[str]:
    """Every path under ``root`` (relative), minus those ``skip`` rejects."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if not skip(p)}
