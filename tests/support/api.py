"""Helpers for the server's API tests: an HTTP client, hand-built multipart bodies, data dirs."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests

TIMEOUT = 30
RAW_TIMEOUT = 20.0  # for reads on a raw socket: how long a test waits before it fails


def md5_hex(data: bytes) -> str:
    """Hex MD5 of ``data``."""
    return hashlib.md5(data).hexdigest()


def url_name(name: str) -> str:
    """A name for a URL path, dots encoded too: urllib3 would otherwise resolve ``..`` itself."""
    return quote(name, safe="/").replace(".", "%2E")


def multipart(
    parts: Iterable[tuple[str, bytes] | tuple[str, bytes, str]], boundary: str | None = None
) -> tuple[bytes, str]:
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

    def post_parts(self, parts: Iterable[tuple[str, bytes] | tuple[str, bytes, str]]) -> requests.Response:
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


def raw_request(api: Api, head: str, body: bytes = b"") -> socket.socket:
    """Send a request head (and the start of a body) on a new socket; the caller reads and closes.

    ``head`` is the request line and any headers, each ending in CRLF; ``Host`` and the
    token are added. For what ``requests`` cannot do: stop half way, or wait for ``100 Continue``.
    """
    parts = urlsplit(api.base)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=RAW_TIMEOUT)
    sock.sendall(f"{head}Host: {parts.netloc}\r\nAuthorization: Bearer {api.token}\r\n\r\n".encode() + body)
    return sock


def status_line(sock: socket.socket) -> bytes:
    """The first line of the answer."""
    received = b""
    while b"\r\n" not in received:
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received.split(b"\r\n", 1)[0]


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body of the first answer on ``sock`` (a ``100 Continue`` is one too)."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before a whole answer: {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(fields.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed in the middle of the answer's body"
        body += chunk
    return int(lines[0].split()[1]), body[:length]


def start_raw_put(api: Api, name: str, total: int, sent: bytes) -> socket.socket:
    """Begin a ``PUT`` that announces ``total`` bytes but sends only ``sent``; caller closes."""
    return raw_request(api, f"PUT /files/{name} HTTP/1.1\r\nContent-Length: {total}\r\n", sent)


def partial_temp_exists(data_dir: Path) -> bool:
    """Whether an upload is in flight with bytes already on disk.

    The server writes in batches of about 1 MiB, so callers send more than that.
    """
    return any(p.stat().st_size > 0 for p in temp_files(data_dir))


def until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the socket's timeout bounds each read)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pytest.fail(f"the server kept the connection open; it sent {received[:200]!r}")
    finally:
        sock.close()
    return received


def answer(raw: bytes) -> tuple[int, dict[str, object]]:
    """Status and JSON body of one raw HTTP answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"\r\ncontent-type: application/json" in head.lower(), head
    return int(head.split()[1]), json.loads(body)
