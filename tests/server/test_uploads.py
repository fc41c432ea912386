"""Storing files: POST /upload (multipart) and PUT /files/{name}, verified or refused."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
from collections.abc import Iterator

import pytest

from tests.support.api import Api, md5_hex, multipart, raw_request, read_response, temp_files
from tests.support.live_server import LiveServer
from updl_server.uploads import DRAIN_LIMIT

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def content_md5(data: bytes) -> str:
    """RFC 1864 Content-MD5 of ``data``."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.mark.parametrize("md5_first", [True, False])
def test_post_upload_stores_verified_file(api: Api, live_server: LiveServer, md5_first: bool) -> None:
    """A verified multipart upload (md5 before or after the file) is stored as sent."""
    data = os.urandom(300_000) + b"\r\n--not-a-boundary\r\n"
    md5_part, file_part = ("md5", md5_hex(data).encode()), ("file", data, "report.bin")
    response = api.post_parts([md5_part, file_part] if md5_first else [file_part, md5_part])
    assert response.status_code == 200, response.text
    info = response.json()
    assert set(info) == {"name", "size", "md5", "sha256", "created", "last_accessed", "expires", "mode", "mtime"}
    assert info["mode"] is None and info["mtime"] is None  # recorded only when the client sends them
    assert info["sha256"] == hashlib.sha256(data).hexdigest()
    assert (info["name"], info["size"], info["md5"]) == ("report.bin", len(data), md5_hex(data))
    assert ISO_Z.match(info["created"])
    assert info["last_accessed"] is None
    assert api.request("GET", "/info/report.bin").json() == info
    assert api.get("report.bin").content == data
    assert temp_files(live_server.data_dir) == []


def test_post_upload_like_curl_with_name_override_and_unknown_parts(api: Api) -> None:
    """A curl-style form works; `name` overrides the filename; unknown parts are ignored."""
    data = b"hello world\n"
    response = api.request(
        "POST",
        "/upload",
        files={"file": ("local.txt", data)},
        data={"md5": md5_hex(data).upper(), "name": "dir/remote.txt", "comment": "ignored"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "dir/remote.txt"
    assert api.names() == ["dir/remote.txt"]


def test_post_upload_wrong_md5_is_409_and_keeps_nothing(api: Api, live_server: LiveServer) -> None:
    """A wrong md5 is a 409 with expected/actual, and nothing is kept."""
    data = os.urandom(50_000)
    wrong = "0123456789ABCDEF0123456789abcdef"
    response = api.post_parts([("file", data, "bad.bin"), ("md5", wrong.encode())])
    assert response.status_code == 409
    assert response.json() == {
        "error": "checksum failed - please attempt reuploading",
        "expected": wrong,
        "actual": md5_hex(data),
        "algorithm": "md5",
    }
    assert api.names() == []
    assert api.get("bad.bin").status_code == 404
    assert temp_files(live_server.data_dir) == []


def test_failed_replacement_keeps_the_old_file(api: Api) -> None:
    """A failed replacement leaves the previous version in place."""
    api.upload("keep.txt", b"original")
    response = api.post_parts([("file", b"impostor", "keep.txt"), ("md5", b"0" * 32)])
    assert response.status_code == 409
    assert api.get("keep.txt").content == b"original"


GOOD = b"payload"
Part = tuple[str, bytes] | tuple[str, bytes, str]
BAD_BODIES: dict[str, list[Part]] = {
    "missing md5": [("file", GOOD, "f.bin")],
    "missing file": [("md5", md5_hex(GOOD).encode())],
    "md5 too short": [("file", GOOD, "f.bin"), ("md5", b"abc")],
    "md5 not hex": [("file", GOOD, "f.bin"), ("md5", b"g" * 32)],
    "two file parts": [("file", GOOD, "f.bin"), ("file", GOOD, "g.bin"), ("md5", md5_hex(GOOD).encode())],
    "huge text part": [("file", GOOD, "f.bin"), ("md5", md5_hex(GOOD).encode()), ("name", b"n" * 5000)],
    "no name at all": [("file", GOOD, ""), ("md5", md5_hex(GOOD).encode())],
}


@pytest.mark.parametrize("case", BAD_BODIES)
def test_post_upload_bad_forms_are_400(api: Api, live_server: LiveServer, case: str) -> None:
    """Forms missing a part, with a bad md5 or two files are 400s and keep nothing."""
    response = api.post_parts(BAD_BODIES[case])
    assert response.status_code == 400, response.text
    assert response.json()["error"]
    assert api.names() == []
    assert temp_files(live_server.data_dir) == []


@pytest.mark.parametrize("case", ["truncated", "garbage", "not multipart", "no boundary"])
def test_post_upload_malformed_bodies_are_400(api: Api, case: str) -> None:
    """Bodies that are not well-formed multipart are 400s."""
    body, content_type = multipart([("file", GOOD, "f.bin"), ("md5", md5_hex(GOOD).encode())])
    if case == "truncated":
        body = body[: body.rindex(b"--") - 10]
    elif case == "garbage":
        body = b"this is not a multipart body at all"
    elif case == "not multipart":
        content_type = "application/octet-stream"
    else:
        content_type = "multipart/form-data"
    response = api.request("POST", "/upload", data=body, headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert response.json()["error"]
    assert api.names() == []


def test_put_with_and_without_content_md5(api: Api) -> None:
    """PUT stores the raw body, with or without Content-MD5."""
    data = os.urandom(100_000)
    with_md5 = api.put("a/with.bin", data, **{"Content-MD5": content_md5(data)})
    assert with_md5.status_code == 200, with_md5.text
    assert with_md5.json()["md5"] == md5_hex(data)
    without = api.put("a/without.bin", data)
    assert without.status_code == 200, without.text
    assert without.json()["size"] == len(data)
    assert api.names("a/") == ["a/with.bin", "a/without.bin"]


def test_put_wrong_content_md5_is_409(api: Api) -> None:
    """A PUT whose Content-MD5 does not match is a 409 and keeps nothing."""
    response = api.put("x.bin", b"actual bytes", **{"Content-MD5": content_md5(b"other bytes")})
    assert response.status_code == 409
    assert response.json()["expected"] == md5_hex(b"other bytes")
    assert response.json()["actual"] == md5_hex(b"actual bytes")
    assert api.names() == []


@pytest.mark.parametrize("header", ["d41d8cd98f00b204e9800998ecf8427e", "!!!", "AAAA"])
def test_put_malformed_content_md5_is_400(api: Api, header: str) -> None:
    """A Content-MD5 that is not base64 of 16 bytes is a 400."""
    response = api.put("x.bin", b"data", **{"Content-MD5": header})
    assert response.status_code == 400
    assert "Content-MD5" in response.json()["error"]
    assert api.names() == []


def test_put_chunked_body(api: Api) -> None:
    """A chunked PUT (no Content-Length) is stored whole."""
    pieces = [os.urandom(70_000) for _ in range(5)]
    response = api.put("chunked.bin", iter(pieces))
    assert response.status_code == 200, response.text
    assert api.get("chunked.bin").content == b"".join(pieces)


def test_put_empty_file(api: Api) -> None:
    """An empty file is a file."""
    info = api.upload("empty", b"")
    assert (info["size"], info["md5"]) == (0, md5_hex(b""))
    response = api.get("empty")
    assert response.status_code == 200 and response.content == b""


def test_replacement_gets_new_content_and_time(api: Api) -> None:
    """Replacing a name swaps the content and gives a new created time."""
    first = api.upload("v.txt", b"version 1")
    second = api.upload("v.txt", b"version 2, longer")
    assert second["created"] > first["created"]
    assert api.get("v.txt").content == b"version 2, longer"
    assert api.names() == ["v.txt"]


LIMIT = 100_000


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Api]]:
    """A server started with ``--max-size 100000`` (module-wide: ``server_factory`` is per test)."""
    server = LiveServer(data_dir=tmp_path_factory.mktemp("small-server"), args=("--max-size", str(LIMIT)))
    server.start()
    yield server, Api(server.url, server.add_user("small"))
    server.stop()


def send_chunks(sock: socket.socket, total: int) -> None:
    """Send ``total`` zero bytes as HTTP/1.1 chunks, never the last (empty) one: a body without end."""
    piece = b"\0" * 65536
    while total > 0:
        data = piece[:total]
        sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
        total -= len(data)


class TestSizeLimit:
    """413 from a server started with ``--max-size 100000``, and *when* it comes.

    Refusals by ``Content-Length`` come before any of the body is read: with
    ``Expect: 100-continue`` the 413 replaces ``100 Continue``; without it, the
    413 comes although the declared terabyte is never sent. Refusals while
    streaming come although the body never ends (the server drains at most
    ``DRAIN_LIMIT`` of it before answering).
    """

    LIMIT = LIMIT
    NEVER_SENT = 10**12  # declared, never sent: far more than the server ever drains
    FILE_HEAD = (
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )

    def check_413(self, status: int, body: bytes, server: LiveServer, api: Api) -> None:
        """The contract's 413, and nothing stored or left behind."""
        assert status == 413, body
        assert json.loads(body) == {"error": "file exceeds the server's size limit", "max_size": self.LIMIT}
        assert api.names() == []
        assert temp_files(server.data_dir) == []

    def test_exactly_the_limit_fits(self, small: tuple[LiveServer, Api]) -> None:
        """A file of exactly max_size bytes is accepted by both routes."""
        _, api = small
        data = os.urandom(self.LIMIT)
        assert api.post_parts([("file", data, "fits.bin"), ("md5", md5_hex(data).encode())]).status_code == 200
        assert api.put("fits-too.bin", data).status_code == 200
        for name in ("fits.bin", "fits-too.bin"):
            assert api.request("DELETE", f"/files/{name}").status_code == 204

    def test_put_refused_by_content_length_with_expect(self, small: tuple[LiveServer, Api]) -> None:
        """``Expect: 100-continue`` and a Content-Length over the limit: 413, not 100 Continue."""
        server, api = small
        head = f"PUT /files/big.bin HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {self.LIMIT + 1}\r\n"
        with raw_request(api, head) as sock:
            self.check_413(*read_response(sock), server, api)

    def test_put_refused_by_content_length(self, small: tuple[LiveServer, Api]) -> None:
        """A PUT declaring more than the limit is refused without waiting for its body."""
        server, api = small
        head = f"PUT /files/big.bin HTTP/1.1\r\nContent-Length: {self.NEVER_SENT}\r\n"
        with raw_request(api, head, b"\0" * 1000) as sock:
            self.check_413(*read_response(sock), server, api)

    def test_multipart_refused_by_content_length_with_expect(self, small: tuple[LiveServer, Api]) -> None:
        """A multipart body over the limit plus the framing allowance: 413, not 100 Continue."""
        server, api = small
        head = (
            "POST /upload HTTP/1.1\r\nExpect: 100-continue\r\n"
            "Content-Type: multipart/form-data; boundary=B\r\n"
            f"Content-Length: {self.LIMIT + 70 * 1024}\r\n"
        )
        with raw_request(api, head) as sock:
            self.check_413(*read_response(sock), server, api)

    def test_multipart_refused_by_content_length(self, small: tuple[LiveServer, Api]) -> None:
        """A multipart body declaring far more than the limit is refused without waiting for it."""
        server, api = small
        head = (
            "POST /upload HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=B\r\n"
            f"Content-Length: {self.NEVER_SENT}\r\n"
        )
        with raw_request(api, head, self.FILE_HEAD + b"\0" * 1000) as sock:
            self.check_413(*read_response(sock), server, api)

    def test_multipart_just_over_the_limit_is_refused(self, small: tuple[LiveServer, Api]) -> None:
        """A file just over the limit inside the multipart allowance is refused by the stream."""
        # Within the multipart allowance, so Content-Length cannot prove it: the stream does.
        server, api = small
        data = os.urandom(self.LIMIT + 1)
        response = api.post_parts([("md5", md5_hex(data).encode()), ("file", data, "big.bin")])
        self.check_413(response.status_code, response.content, server, api)

    def test_multipart_refused_while_streaming(self, small: tuple[LiveServer, Api]) -> None:
        """A chunked multipart body whose file part passes the limit and never ends: 413."""
        server, api = small
        head = (
            "POST /upload HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=B\r\nTransfer-Encoding: chunked\r\n"
        )
        with raw_request(api, head) as sock:
            sock.sendall(b"%x\r\n%s\r\n" % (len(self.FILE_HEAD), self.FILE_HEAD))
            send_chunks(sock, self.LIMIT + DRAIN_LIMIT + 1024 * 1024)
            self.check_413(*read_response(sock), server, api)

    def test_chunked_put_refused_while_streaming(self, small: tuple[LiveServer, Api]) -> None:
        """A chunked PUT is refused as soon as the stream passes the limit, though it never ends."""
        server, api = small
        with raw_request(api, "PUT /files/big.bin HTTP/1.1\r\nTransfer-Encoding: chunked\r\n") as sock:
            send_chunks(sock, self.LIMIT + DRAIN_LIMIT + 1024 * 1024)
            self.check_413(*read_response(sock), server, api)
