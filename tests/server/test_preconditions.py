"""Conditional requests: 304 for a cached download, 412 for an upload whose precondition fails."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable

import pytest

from tests.support.api import (
    RAW_TIMEOUT,
    Api,
    md5_hex,
    multipart,
    raw_request,
    status_line,
    temp_files,
)
from tests.support.live_server import LiveServer
from tests.support.racing import committed_blobs, race_puts


def etag(data: bytes) -> str:
    """The ETag the server gives ``data``."""
    return f'"{md5_hex(data)}"'


def refused(name: str, current: bytes | None) -> dict[str, object]:
    """The 412 body for ``name`` whose current content is ``current`` (``None``: absent)."""
    return {"error": "precondition failed", "name": name, "current_md5": None if current is None else md5_hex(current)}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_if_none_match_gives_304(api: Api, method: str) -> None:
    """A matching (or ``*``, weak, listed) ``If-None-Match`` is a bodiless 304 with the ETag."""
    data = os.urandom(10_000)
    api.upload("c.bin", data)
    for header in (etag(data), "*", f"W/{etag(data)}", f'"{"0" * 32}", {etag(data)}'):
        response = api.request(method, "/files/c.bin", headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["ETag"] == etag(data)
    stale = api.request(method, "/files/c.bin", headers={"If-None-Match": etag(b"old")})
    assert stale.status_code == 200
    assert stale.content == (data if method == "GET" else b"")
    missing = api.request(method, "/files/none.bin", headers={"If-None-Match": "*"})
    assert missing.status_code == 404


def test_put_if_none_match_star_creates_only(api: Api, live_server: LiveServer) -> None:
    """``If-None-Match: *`` stores a new name and refuses an existing one, keeping it whole."""
    assert api.put("new.txt", b"first", **{"If-None-Match": "*"}).status_code == 200
    blobs = len(committed_blobs(live_server.data_dir))
    response = api.put("new.txt", b"second", **{"If-None-Match": "*"})
    assert response.status_code == 412
    assert response.json() == refused("new.txt", b"first")
    assert api.get("new.txt").content == b"first"
    assert len(committed_blobs(live_server.data_dir)) == blobs
    assert temp_files(live_server.data_dir) == []


def test_put_if_match(api: Api) -> None:
    """``If-Match`` replaces only the named version; ``*`` needs some version to exist."""
    absent = api.put("m.txt", b"v1", **{"If-Match": "*"})
    assert (absent.status_code, absent.json()) == (412, refused("m.txt", None))
    assert api.put("m.txt", b"v1", **{"If-Match": etag(b"v0")}).json() == refused("m.txt", None)
    api.upload("m.txt", b"v1")
    assert api.put("m.txt", b"v2", **{"If-Match": etag(b"v1")}).status_code == 200
    stale = api.put("m.txt", b"v3", **{"If-Match": etag(b"v1")})
    assert (stale.status_code, stale.json()) == (412, refused("m.txt", b"v2"))
    weak = api.put("m.txt", b"v3", **{"If-Match": f"W/{etag(b'v2')}"})  # If-Match is strong
    assert weak.status_code == 412
    assert api.put("m.txt", b"v3", **{"If-Match": "*"}).status_code == 200
    assert api.get("m.txt").content == b"v3"


@pytest.mark.parametrize("header", ["If-Match", "If-None-Match"])
def test_malformed_condition_on_upload_is_400(api: Api, header: str) -> None:
    """An entity tag without quotes is a JSON 400, and nothing is stored."""
    response = api.put("x.txt", b"data", **{header: md5_hex(b"data")})
    assert response.status_code == 400
    assert "malformed" in response.json()["error"]
    assert api.names() == []


def test_post_upload_honours_conditions(api: Api, live_server: LiveServer) -> None:
    """``POST /upload``: name before or after the file, the condition holds and no blob is left."""
    api.upload("p.bin", b"current")
    blobs = len(committed_blobs(live_server.data_dir))
    data = b"replacement"
    forms: list[list[tuple[str, bytes] | tuple[str, bytes, str]]] = [
        [("name", b"p.bin"), ("md5", md5_hex(data).encode()), ("file", data, "f")],
        [("file", data, "p.bin"), ("md5", md5_hex(data).encode())],
    ]
    for parts in forms:
        body, content_type = multipart(parts)
        response = api.request(
            "POST", "/upload", data=body, headers={"Content-Type": content_type, "If-None-Match": "*"}
        )
        assert (response.status_code, response.json()) == (412, refused("p.bin", b"current"))
    assert len(committed_blobs(live_server.data_dir)) == blobs  # the commit-time refusal too
    assert temp_files(live_server.data_dir) == []
    body, content_type = multipart([("name", b"p.bin"), ("md5", md5_hex(data).encode()), ("file", data, "f")])
    ok = api.request("POST", "/upload", data=body, headers={"Content-Type": content_type, "If-Match": etag(b"current")})
    assert ok.status_code == 200, ok.text
    assert api.get("p.bin").content == data


def test_put_is_refused_before_the_body(api: Api) -> None:
    """With ``Expect: 100-continue`` the 412 comes instead of ``100 Continue``: no byte is read."""
    api.upload("early.bin", b"exists")
    sock = raw_request(
        api, "PUT /files/early.bin HTTP/1.1\r\nIf-None-Match: *\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n"
    )
    with sock:
        assert status_line(sock) == b"HTTP/1.1 412 Precondition Failed"


def test_post_with_name_first_is_refused_before_the_file_ends(api: Api) -> None:
    """Name part first: the 412 arrives while the file is still being sent (the server stops
    storing at once and drains a bounded amount), not after a body that never ends."""
    api.upload("early.bin", b"exists")
    boundary = uuid.uuid4().hex
    start = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nearly.bin\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    declared = 64 * 1024 * 1024  # more than will ever be sent
    sock = raw_request(
        api,
        "POST /upload HTTP/1.1\r\nIf-None-Match: *\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {declared}\r\n",
        start,
    )

    def send_most_of_the_file() -> None:
        chunk = b"\0" * 65536
        try:
            for _ in range((declared - len(start)) // len(chunk) - 16):
                sock.sendall(chunk)
        except OSError:
            pass  # the server answered and closed: expected

    sender = threading.Thread(target=send_most_of_the_file, daemon=True)
    sender.start()
    with sock:
        assert status_line(sock) == b"HTTP/1.1 412 Precondition Failed"
    sender.join(RAW_TIMEOUT)
    assert api.get("early.bin").content == b"exists"


@pytest.fixture(params=["sqlite", "postgresql"])
def racing_server(request: pytest.FixtureRequest, server_factory: Callable[..., LiveServer]) -> LiveServer:
    """A fresh server on each kind of catalog."""
    if request.param == "sqlite":
        return server_factory()
    return server_factory("--db-url", request.getfixturevalue("pg_database"))


def test_racing_creates_one_wins(racing_server: LiveServer) -> None:
    """Two ``If-None-Match: *`` uploads of one new name in flight together: one 200, one 412,
    the stored file is the winner's, whole, and the loser's blob is gone."""
    api = Api(racing_server.url, racing_server.add_user("racer"))
    for round_ in range(3):
        name = f"race-{round_}.bin"
        contents = [os.urandom(300_000), os.urandom(300_001)]
        responses = race_puts([api, api], name, contents, {"If-None-Match": "*"})
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 412], (round_, [r.text for r in responses])
        winner = next(r.json() for r in responses if r.status_code == 200)
        loser = next(r.json() for r in responses if r.status_code == 412)
        assert loser == {"error": "precondition failed", "name": name, "current_md5": winner["md5"]}
        assert md5_hex(api.get(name).content) == winner["md5"]
        assert len(committed_blobs(racing_server.data_dir)) == round_ + 1
    assert temp_files(racing_server.data_dir) == []


def test_racing_conditional_replacements_one_wins(racing_server: LiveServer) -> None:
    """Two ``If-Match`` replacements of the same version: only one replaces it."""
    api = Api(racing_server.url, racing_server.add_user("racer"))
    api.upload("doc.txt", b"v0")
    contents = [os.urandom(300_000), os.urandom(300_001)]
    responses = race_puts([api, api], "doc.txt", contents, {"If-Match": etag(b"v0")})
    assert sorted(r.status_code for r in responses) == [200, 412]
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert md5_hex(api.get("doc.txt").content) == winner["md5"]
    assert len(committed_blobs(racing_server.data_dir)) == 1
