"""curl against the real server, used the way README.md and docs/api.md tell a user to."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import LiveServer
from tests.interop.conftest import (
    MIB,
    md5_hex,
    require_tool,
    run_tool,
    same_bytes,
    sdk_download,
    write_prefix,
)
from tests.server.support import Api, url_name


class Reply(NamedTuple):
    """What curl received: status, the last response's header fields (lower-cased), body file."""

    status: int
    headers: dict[str, str]
    body: Path

    def json(self) -> dict[str, object]:
        """The body as JSON, after checking the response said it is JSON."""
        assert self.headers["content-type"].startswith("application/json"), self.headers
        result: dict[str, object] = json.loads(self.body.read_bytes())
        return result


Curl = Callable[..., Reply]


@pytest.fixture
def curl(live_server: LiveServer, token: str, tmp_path: Path) -> Curl:
    """``curl(path, *args, auth=True, stdin=None)``: run curl against the server; it must exit 0.

    The body goes to ``tmp_path/curl-body`` (``-o``), so ``-C -`` continues that file.
    """
    exe = require_tool("curl")

    def run(path: str, *args: str, auth: bool = True, stdin: Path | None = None) -> Reply:
        head, body = tmp_path / "curl-headers", tmp_path / "curl-body"
        cmd = [exe, "-sS", "-D", str(head), "-o", str(body), "-w", "%{http_code}", *args]
        if auth:
            cmd += ["-H", f"Authorization: Bearer {token}"]
        result = run_tool(*cmd, f"{live_server.url}{path}", stdin=stdin)
        assert result.returncode == 0, result.stderr
        return Reply(int(result.stdout), last_headers(head), body)

    return run


def last_headers(dump: Path) -> dict[str, str]:
    """Header fields of the last response in a ``curl -D`` dump (after any 100 Continue)."""
    blocks = [b for b in dump.read_bytes().decode("latin-1").split("\r\n\r\n") if b.strip()]
    fields = {}
    for line in blocks[-1].split("\r\n")[1:]:
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip()
    return fields


def b64(md5: str) -> str:
    """The RFC 1864 ``Content-MD5`` form of a hex MD5."""
    return base64.b64encode(bytes.fromhex(md5)).decode()


def flipped(md5: str) -> str:
    """A well-formed MD5 that is certainly not ``md5``: every bit flipped."""
    return bytes(b ^ 0xFF for b in bytes.fromhex(md5)).hex()


def test_multipart_upload_as_the_readme_shows_then_updl_get(
        live_server: LiveServer, token: str, pattern_file, run_updl, tmp_path: Path) -> None:
    source = pattern_file("app.tar.gz", 2 * MIB + 7)
    # As README.md shows:
    # curl -H "Authorization: Bearer $UPDL_TOKEN" -F file=@app.tar.gz -F md5=... $UPDL_URL/upload
    result = run_tool(require_tool("curl"), "-sS", "--fail-with-body",
                      "-H", f"Authorization: Bearer {token}",
                      "-F", f"file=@{source}", "-F", f"md5={md5_hex(source)}",
                      f"{live_server.url}/upload")
    assert result.returncode == 0, result.stdout + result.stderr
    info = json.loads(result.stdout)
    assert (info["name"], info["size"], info["md5"]) == ("app.tar.gz", source.stat().st_size,
                                                         md5_hex(source))

    dest = tmp_path / "out" / "app.tar.gz"
    dest.parent.mkdir()
    got = run_updl(live_server, token, "get", "app.tar.gz", "-o", str(dest))
    assert got.returncode == 0, got.stderr
    assert same_bytes(dest, source)


def test_multipart_name_part_overrides_the_filename(
        live_server: LiveServer, curl: Curl, pattern_file, api: Api, tmp_path: Path) -> None:
    source = pattern_file("local.bin", 70_000)
    reply = curl("/upload", "-F", "name=builds/42/app.bin", "-F", f"file=@{source}",
                 "-F", f"md5={md5_hex(source).upper()}")
    assert reply.status == 200
    assert reply.json()["name"] == "builds/42/app.bin"
    assert api.names() == ["builds/42/app.bin"]
    sdk_download(live_server, api.token, "builds/42/app.bin", tmp_path / "copy")
    assert same_bytes(tmp_path / "copy", source)


def test_multipart_with_a_wrong_md5_is_409_json_and_nothing_is_stored(
        curl: Curl, pattern_file, api: Api) -> None:
    source = pattern_file("bad.bin", MIB)
    wrong = flipped(md5_hex(source))
    reply = curl("/upload", "-F", f"file=@{source}", "-F", f"md5={wrong}")
    assert reply.status == 409
    assert reply.json() == {"error": "checksum failed - please attempt reuploading",
                            "expected": wrong, "actual": md5_hex(source)}
    assert api.names() == []


@pytest.mark.parametrize("stdin", [False, True], ids=["T-file", "T-stdin-chunked"])
def test_put_with_curl_T(live_server: LiveServer, curl: Curl, pattern_file, api: Api,
                         tmp_path: Path, stdin: bool) -> None:
    source = pattern_file("put.bin", MIB + 1)
    # `-T -` reads stdin, so curl sends it chunked (no Content-Length): the server must stream it.
    reply = curl(f"/files/{url_name('dir/put.bin')}", "-T", "-" if stdin else str(source),
                 "-H", f"Content-MD5: {b64(md5_hex(source))}", stdin=source if stdin else None)
    assert reply.status == 200
    info = reply.json()
    assert (info["name"], info["size"], info["md5"]) == ("dir/put.bin", source.stat().st_size,
                                                         md5_hex(source))
    sdk_download(live_server, api.token, "dir/put.bin", tmp_path / "copy")
    assert same_bytes(tmp_path / "copy", source)


def test_put_with_a_wrong_content_md5_is_409_json_and_nothing_is_stored(
        curl: Curl, pattern_file, api: Api) -> None:
    source = pattern_file("bad-put.bin", MIB)
    reply = curl(f"/files/{url_name('bad-put.bin')}", "-T", str(source),
                 "-H", f"Content-MD5: {b64(flipped(md5_hex(source)))}")
    assert reply.status == 409
    body = reply.json()
    assert body["error"] == "checksum failed - please attempt reuploading"
    assert body["actual"] == md5_hex(source)
    assert api.names() == []


def test_download_with_curl_o_carries_the_md5_of_its_bytes(curl: Curl, stored) -> None:
    source = stored("reports/r.bin", 2 * MIB + 3)
    reply = curl(f"/files/{url_name('reports/r.bin')}")
    assert reply.status == 200
    assert same_bytes(reply.body, source)
    received = md5_hex(reply.body)
    assert reply.headers["etag"] == f'"{received}"'
    assert reply.headers["content-md5"] == b64(received)
    assert int(reply.headers["content-length"]) == source.stat().st_size


@pytest.mark.parametrize("have", [1, MIB, 3 * MIB + 4])
def test_curl_C_resumes_a_partial_download(curl: Curl, stored, tmp_path: Path, have: int) -> None:
    source = stored("big.bin", 3 * MIB + 5)
    size = source.stat().st_size
    write_prefix(source, tmp_path / "curl-body", have)
    # -C - : curl asks for the rest with Range: bytes=<size of the partial file>- and appends it.
    reply = curl(f"/files/{url_name('big.bin')}", "-C", "-")
    assert reply.status == 206
    assert reply.headers["content-range"] == f"bytes {have}-{size - 1}/{size}"
    assert same_bytes(reply.body, source)


@pytest.mark.parametrize("method, path", [("GET", "/files"), ("GET", "/files/x.bin"),
                                          ("HEAD", "/files/x.bin"), ("POST", "/upload"),
                                          ("DELETE", "/files/x.bin"), ("POST", "/tus/")])
def test_no_token_is_401_with_a_json_body(curl: Curl, method: str, path: str) -> None:
    tus = ["-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Length: 1"] if path == "/tus/" else []
    # curl -I sends HEAD, whose answer has no body: only its headers can be checked.
    reply = curl(path, *(["-I"] if method == "HEAD" else ["-X", method]), *tus, auth=False)
    assert reply.status == 401
    assert reply.headers["www-authenticate"].startswith("Bearer")
    if method != "HEAD":
        assert isinstance(reply.json()["error"], str)
