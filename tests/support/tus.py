"""Helpers for tus 1.0 requests against a live server: create an upload, send a chunk, ask its offset."""

from __future__ import annotations

import base64
import hashlib
import socket
import zlib
from pathlib import Path
from typing import Any

import requests

from tests.support.api import Api, raw_request
from tests.support.live_server import LiveServer

TUS = {"Tus-Resumable": "1.0.0"}
STREAM = {**TUS, "Content-Type": "application/offset+octet-stream"}


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def create(api: Api, length: int, name: str = "big.bin", **meta: str) -> requests.Response:
    return api.request(
        "POST", "/tus/", headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata(name=name, **meta)}
    )


def created(api: Api, length: int, name: str = "big.bin", **meta: str) -> str:
    response = create(api, length, name, **meta)
    assert response.status_code == 201, response.text
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.headers["Upload-Offset"] == "0" and "Upload-Expires" in response.headers
    return "/tus/" + response.headers["Location"].rsplit("/tus/", 1)[1]


def patch(
    api: Api, path: str, offset: int, data: Any, algorithm: str | None = "md5", digest: bytes | None = None
) -> requests.Response:
    headers = {**STREAM, "Upload-Offset": str(offset)}
    if algorithm is not None:
        if digest is None:
            digest = (
                zlib.crc32(data).to_bytes(4, "big") if algorithm == "crc32" else hashlib.new(algorithm, data).digest()
            )
        headers["Upload-Checksum"] = f"{algorithm} {base64.b64encode(digest).decode()}"
    return api.request("PATCH", path, data=data, headers=headers)


def offset_of(api: Api, path: str) -> int:
    response = api.request("HEAD", path, headers=TUS)
    assert response.status_code == 200, response.status_code
    return int(response.headers["Upload-Offset"])


def staging(server: LiveServer) -> Path:
    return server.data_dir / "blobs" / "staging"


def start_raw_patch(
    api: Api, path: str, offset: int, total: int, sent: bytes, checksum: bytes | None = None
) -> socket.socket:
    """Begin a PATCH at ``offset`` announcing ``total`` bytes but sending only ``sent``; caller closes.

    ``checksum`` (the MD5 of the whole announced body) adds an ``Upload-Checksum``.
    """
    header = "" if checksum is None else f"Upload-Checksum: md5 {base64.b64encode(checksum).decode()}\r\n"
    return raw_request(
        api,
        f"PATCH {path} HTTP/1.1\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: {offset}\r\nContent-Length: {total}\r\n{header}",
        sent,
    )


def partial(api: Api, length: int) -> str:
    """A new partial upload (tus Concatenation) of ``length`` bytes; its path."""
    response = api.request("POST", "/tus/", headers={**TUS, "Upload-Length": str(length), "Upload-Concat": "partial"})
    assert response.status_code == 201, response.text
    return "/tus/" + response.headers["Location"].rsplit("/tus/", 1)[1]


def sent_part(api: Api, data: bytes) -> str:
    """A partial upload holding ``data``, complete; its path."""
    path = partial(api, len(data))
    answer = patch(api, path, 0, data, algorithm="crc32")
    assert answer.status_code == 204, answer.text
    assert "Upload-Md5" not in answer.headers  # a part is not a file
    return path


def final(api: Api, paths: list[str], name: str = "joined.bin", **extra: str) -> requests.Response:
    """``Upload-Concat: final`` of ``paths`` as ``name``; ``md5``/``sha256`` in ``extra`` go into the
    metadata, other ``extra`` are headers."""
    meta: dict[str, str] = {"name": name}
    meta.update((key, extra.pop(key)) for key in ("md5", "sha256") if key in extra)
    headers = {**TUS, "Upload-Concat": "final;" + " ".join(paths), "Upload-Metadata": metadata(**meta), **extra}
    return api.request("POST", "/tus/", headers=headers)
