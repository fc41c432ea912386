"""Reading files back: list, info, GET/HEAD with Range, DELETE."""

from __future__ import annotations

import base64
import hashlib
import os
from email.utils import parsedate_to_datetime

import pytest

from tests.support.api import Api, md5_hex


def test_list_prefix_and_pagination(api: Api) -> None:
    """limit=2 pages through 5 prefixed files by name; prefix is case-sensitive."""
    names = ["b/1", "b/2", "b/3", "b/4", "b/5"]
    for name in [*names, "a", "B/upper", "c"]:
        api.upload(name, name.encode())
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"prefix": "b/", "limit": "2", **({"cursor": cursor} if cursor else {})}
        response = api.request("GET", "/files", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["files"]) <= 2
        seen += [f["name"] for f in page["files"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert seen == names
    assert pages == 3
    assert api.names() == ["B/upper", "a", *names, "c"]
    everything = api.request("GET", "/files").json()
    assert everything["next_cursor"] is None
    first = everything["files"][0]
    assert first == api.request("GET", "/info/B/upper").json()


def test_list_prefix_is_plain_text(api: Api) -> None:
    """Prefix characters that are SQL wildcards elsewhere match only themselves."""
    for name in ["100%_done", "100x_done", "abc"]:
        api.upload(name, b"x")
    assert api.names("100%_") == ["100%_done"]
    assert api.names("A") == []


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "-1"}, {"limit": "many"}, {"cursor": "%%%"}])
def test_list_bad_parameters_are_400(api: Api, params: dict[str, str]) -> None:
    """A non-positive or non-numeric limit, or a forged cursor, is a 400."""
    response = api.request("GET", "/files", params=params)
    assert response.status_code == 400
    assert response.json()["error"]


def test_list_limit_is_capped(api: Api) -> None:
    """A limit above 1000 is accepted (and capped), not refused."""
    api.upload("only", b"x")
    response = api.request("GET", "/files", params={"limit": "5000"})
    assert response.status_code == 200
    assert [f["name"] for f in response.json()["files"]] == ["only"]


def test_get_returns_bytes_and_headers(api: Api) -> None:
    """GET streams the exact bytes with ETag, Content-MD5 and friends, and marks access."""
    data = os.urandom(3 * 1024 * 1024 + 17)  # several server chunks
    info = api.upload("dir/big.bin", data)
    response = api.get("dir/big.bin")
    assert response.status_code == 200
    assert response.content == data
    headers = response.headers
    assert headers["ETag"] == f'"{md5_hex(data)}"'
    assert headers["Content-MD5"] == base64.b64encode(hashlib.md5(data).digest()).decode()
    assert headers["Content-Length"] == str(len(data))
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Type"] == "application/octet-stream"
    assert parsedate_to_datetime(headers["Last-Modified"]).strftime("%Y-%m-%dT%H:%M:%S") == info["created"][:19]
    accessed = api.request("GET", "/info/dir/big.bin").json()["last_accessed"]
    assert accessed is not None and accessed >= info["created"]


def test_ranges(api: Api) -> None:
    """Single ranges give 206, outside ranges 416, several ranges 200, If-Range gates ranges."""
    data = bytes(range(256)) * 40  # 10240 bytes
    api.upload("r.bin", data)
    etag = f'"{md5_hex(data)}"'
    for header, start, end in [
        ("bytes=0-99", 0, 99),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-40", 10200, 10239),
        ("bytes=10200-99999", 10200, 10239),
    ]:
        response = api.get("r.bin", Range=header)
        assert response.status_code == 206, header
        assert response.content == data[start : end + 1]
        assert response.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
        assert response.headers["Content-Length"] == str(end - start + 1)
        assert response.headers["ETag"] == etag
        assert "Content-MD5" not in response.headers

    several = api.get("r.bin", Range="bytes=0-1,5-6")
    assert several.status_code == 200 and several.content == data

    unsatisfiable = api.get("r.bin", Range="bytes=10240-")
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["Content-Range"] == f"bytes */{len(data)}"
    assert unsatisfiable.headers["Content-Type"] == "application/json"
    assert unsatisfiable.json()["error"]

    matching = api.get("r.bin", Range="bytes=5-9", **{"If-Range": etag})
    assert matching.status_code == 206 and matching.content == data[5:10]
    stale = api.get("r.bin", Range="bytes=5-9", **{"If-Range": f'"{"0" * 32}"'})
    assert stale.status_code == 200 and stale.content == data


def test_head(api: Api) -> None:
    """HEAD answers GET's status and headers without a body and is not an access."""
    data = os.urandom(5000)
    api.upload("h.bin", data)
    head = api.request("HEAD", "/files/h.bin")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Length"] == "5000"
    assert head.headers["ETag"] == f'"{md5_hex(data)}"'
    assert "Content-MD5" in head.headers
    partial = api.request("HEAD", "/files/h.bin", headers={"Range": "bytes=0-9"})
    assert partial.status_code == 206
    assert partial.headers["Content-Range"] == "bytes 0-9/5000"
    assert partial.headers["Content-Length"] == "10"
    assert api.request("HEAD", "/files/nothing").status_code == 404
    # HEAD is not a download.
    assert api.request("GET", "/info/h.bin").json()["last_accessed"] is None


def test_delete(api: Api) -> None:
    """DELETE answers 204, then the file is gone everywhere; deleting again is 404."""
    api.upload("d/gone.txt", b"bye")
    api.upload("d/stays.txt", b"hi")
    response = api.request("DELETE", "/files/d/gone.txt")
    assert response.status_code == 204 and response.content == b""
    assert api.get("d/gone.txt").status_code == 404
    info = api.request("GET", "/info/d/gone.txt")
    assert info.status_code == 404
    assert info.json() == {"error": "no such file", "name": "d/gone.txt"}
    again = api.request("DELETE", "/files/d/gone.txt")
    assert again.status_code == 404 and again.json()["error"] == "no such file"
    assert api.names() == ["d/stays.txt"]


def test_empty_file_ranges(api: Api) -> None:
    """An empty file has no satisfiable range but downloads fine whole."""
    api.upload("empty", b"")
    assert api.get("empty", Range="bytes=0-").status_code == 416
    assert api.get("empty").content == b""
