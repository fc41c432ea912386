"""curl against the real server, used the way README.md and docs/api.md tell a user to."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

import updl
from tests.support.api import Api, url_name
from tests.support.interop import (
    MIB,
    flipped,
    md5_hex,
    require_tool,
    run_tool,
    same_bytes,
    sdk_download,
    write_prefix,
)
from tests.support.live_server import LiveServer


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


def test_multipart_upload_as_the_readme_shows_then_updl_get(
    live_server: LiveServer, token: str, pattern_file, run_updl, tmp_path: Path
) -> None:
    source = pattern_file("app.tar.gz", 2 * MIB + 7)
    # As README.md shows:
    # curl -H "Authorization: Bearer $UPDL_TOKEN" -F file=@app.tar.gz -F md5=... $UPDL_URL/upload
    result = run_tool(
        require_tool("curl"),
        "-sS",
        "--fail-with-body",
        "-H",
        f"Authorization: Bearer {token}",
        "-F",
        f"file=@{source}",
        "-F",
        f"md5={md5_hex(source)}",
        f"{live_server.url}/upload",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    info = json.loads(result.stdout)
    assert (info["name"], info["size"], info["md5"]) == ("app.tar.gz", source.stat().st_size, md5_hex(source))

    dest = tmp_path / "out" / "app.tar.gz"
    dest.parent.mkdir()
    got = run_updl(live_server, token, "get", "app.tar.gz", "-o", str(dest))
    assert got.returncode == 0, got.stderr
    assert same_bytes(dest, source)


def test_multipart_name_part_overrides_the_filename(
    live_server: LiveServer, curl: Curl, pattern_file, api: Api, tmp_path: Path
) -> None:
    source = pattern_file("local.bin", 70_000)
    reply = curl(
        "/upload", "-F", "name=builds/42/app.bin", "-F", f"file=@{source}", "-F", f"md5={md5_hex(source).upper()}"
    )
    assert reply.status == 200
    assert reply.json()["name"] == "builds/42/app.bin"
    assert api.names() == ["builds/42/app.bin"]
    sdk_download(live_server, api.token, "builds/42/app.bin", tmp_path / "copy")
    assert same_bytes(tmp_path / "copy", source)


def test_multipart_with_a_wrong_md5_is_409_json_and_nothing_is_stored(curl: Curl, pattern_file, api: Api) -> None:
    source = pattern_file("bad.bin", MIB)
    wrong = flipped(md5_hex(source))
    reply = curl("/upload", "-F", f"file=@{source}", "-F", f"md5={wrong}")
    assert reply.status == 409
    assert reply.json() == {
        "error": "checksum failed - please attempt reuploading",
        "expected": wrong,
        "actual": md5_hex(source),
        "algorithm": "md5",
    }
    assert api.names() == []


@pytest.mark.parametrize("stdin", [False, True], ids=["T-file", "T-stdin-chunked"])
def test_put_with_curl_T(
    live_server: LiveServer, curl: Curl, pattern_file, api: Api, tmp_path: Path, stdin: bool
) -> None:
    source = pattern_file("put.bin", MIB + 1)
    # `-T -` reads stdin, so curl sends it chunked (no Content-Length): the server must stream it.
    reply = curl(
        f"/files/{url_name('dir/put.bin')}",
        "-T",
        "-" if stdin else str(source),
        "-H",
        f"Content-MD5: {b64(md5_hex(source))}",
        stdin=source if stdin else None,
    )
    assert reply.status == 200
    info = reply.json()
    assert (info["name"], info["size"], info["md5"]) == ("dir/put.bin", source.stat().st_size, md5_hex(source))
    sdk_download(live_server, api.token, "dir/put.bin", tmp_path / "copy")
    assert same_bytes(tmp_path / "copy", source)


def test_put_with_a_wrong_content_md5_is_409_json_and_nothing_is_stored(curl: Curl, pattern_file, api: Api) -> None:
    source = pattern_file("bad-put.bin", MIB)
    reply = curl(
        f"/files/{url_name('bad-put.bin')}", "-T", str(source), "-H", f"Content-MD5: {b64(flipped(md5_hex(source)))}"
    )
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


def test_curl_C_on_a_complete_file_changes_nothing(curl: Curl, stored, tmp_path: Path) -> None:
    source = stored("done.bin", MIB + 5)
    shutil.copyfile(source, tmp_path / "curl-body")
    reply = curl(f"/files/{url_name('done.bin')}", "-C", "-")
    assert reply.status == 416  # nothing left to send; curl knows the file is complete
    assert reply.headers["content-range"] == f"bytes */{source.stat().st_size}"
    assert same_bytes(reply.body, source)


def test_curl_C_with_if_range_never_splices_two_versions(
    live_server: LiveServer, token: str, stored, pattern_file, tmp_path: Path
) -> None:
    old = stored("changing.bin", MIB + 5)
    new = pattern_file("changing-v2.bin", MIB + 5)
    with updl.Client(live_server.url, token) as client:
        client.upload(new, "changing.bin")
    partial = tmp_path / "partial"
    write_prefix(old, partial, 1000)
    # The file changed since the partial download: If-Range makes the server send all of the
    # new version (200), which curl refuses to append (exit 33) instead of mixing versions.
    result = run_tool(
        require_tool("curl"),
        "-sS",
        "-C",
        "-",
        "-o",
        str(partial),
        "-H",
        f'If-Range: "{md5_hex(old)}"',
        "-H",
        f"Authorization: Bearer {token}",
        f"{live_server.url}/files/{url_name('changing.bin')}",
    )
    assert result.returncode == 33, result.stderr
    assert partial.stat().st_size == 1000


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/files"),
        ("GET", "/files/x.bin"),
        ("HEAD", "/files/x.bin"),
        ("POST", "/upload"),
        ("DELETE", "/files/x.bin"),
        ("POST", "/tus/"),
    ],
)
def test_no_token_is_401_with_a_json_body(curl: Curl, method: str, path: str) -> None:
    tus = ["-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Length: 1"] if path == "/tus/" else []
    # curl -I sends HEAD, whose answer has no body: only its headers can be checked.
    reply = curl(path, *(["-I"] if method == "HEAD" else ["-X", method]), *tus, auth=False)
    assert reply.status == 401
    assert reply.headers["www-authenticate"].startswith("Bearer")
    if method != "HEAD":
        assert isinstance(reply.json()["error"], str)


RANGES_SIZE = MIB + 77


@pytest.mark.parametrize(
    "spec, first, last",
    [
        ("0-99", 0, 99),
        ("100-", 100, RANGES_SIZE - 1),
        ("-100", RANGES_SIZE - 100, RANGES_SIZE - 1),  # the last 100 bytes
        (f"{MIB - 6}-{MIB + 4}", MIB - 6, MIB + 4),
    ],
)
def test_curl_r_byte_ranges(curl: Curl, stored, spec: str, first: int, last: int) -> None:
    source = stored("ranges.bin", RANGES_SIZE)
    size = source.stat().st_size
    reply = curl(f"/files/{url_name('ranges.bin')}", "-r", spec)
    assert reply.status == 206
    assert reply.headers["content-range"] == f"bytes {first}-{last}/{size}"
    expected = reply.body.parent / "expected"
    with open(source, "rb") as src:
        src.seek(first)
        expected.write_bytes(src.read(last - first + 1))
    assert same_bytes(reply.body, expected)


def test_curl_r_past_the_end_is_416_json(curl: Curl, stored) -> None:
    source = stored("short.bin", 1000)
    reply = curl(f"/files/{url_name('short.bin')}", "-r", "5000-")
    assert reply.status == 416
    assert reply.headers["content-range"] == f"bytes */{source.stat().st_size}"
    assert isinstance(reply.json()["error"], str)


def test_curl_r_with_several_ranges_gets_the_whole_file(curl: Curl, stored) -> None:
    source = stored("multi.bin", 100_000)
    reply = curl(f"/files/{url_name('multi.bin')}", "-r", "0-9,50-59")
    assert reply.status == 200
    assert same_bytes(reply.body, source)


def test_curl_etag_save_then_compare_gets_304(curl: Curl, stored, tmp_path: Path) -> None:
    source = stored("cached.bin", 200_000)
    etag_file = tmp_path / "etag"
    first = curl(f"/files/{url_name('cached.bin')}", "--etag-save", str(etag_file))
    assert first.status == 200
    assert etag_file.read_text().strip() == f'"{md5_hex(source)}"'
    again = curl(f"/files/{url_name('cached.bin')}", "--etag-compare", str(etag_file))
    assert again.status == 304
    assert again.headers["etag"] == f'"{md5_hex(source)}"'
    assert same_bytes(again.body, source)  # a 304 has no body: the cached copy stays


@pytest.mark.parametrize(
    "name", ["with space.txt", "ünïcödé/ファイル.bin", "percent%41.bin", "q?x=1#frag.bin", "+plus&amp;.bin"]
)
def test_names_that_need_percent_encoding(
    live_server: LiveServer, curl: Curl, pattern_file, api: Api, tmp_path: Path, name: str
) -> None:
    source = pattern_file("enc.bin", 5000)
    reply = curl(f"/files/{url_name(name)}", "-T", str(source))
    assert reply.status == 200
    assert reply.json()["name"] == name
    assert api.names() == [name]
    sdk_download(live_server, api.token, name, tmp_path / "copy")
    assert same_bytes(tmp_path / "copy", source)


@pytest.mark.parametrize(
    "path", ["/files/a/../b.bin", "/files/a/./b.bin", "/files/a//b.bin", "/files/a%2F..%2Fb.bin", "/files/%2E%2E/b.bin"]
)
def test_dot_segments_sent_as_is_are_refused_as_json(curl: Curl, pattern_file, api: Api, path: str) -> None:
    source = pattern_file("hostile.bin", 100)
    # --path-as-is: curl would otherwise resolve the dot segments itself.
    reply = curl(path, "--path-as-is", "-T", str(source))
    assert reply.status == 400, reply.body.read_bytes()
    assert str(reply.json()["error"]).startswith("invalid name")
    assert api.names() == []


@pytest.mark.parametrize("args, status", [(["-X", "GET"], 404), (["-X", "DELETE"], 404), (["-X", "PATCH"], 405)])
def test_errors_on_unknown_names_and_methods_are_json(curl: Curl, args: list[str], status: int) -> None:
    reply = curl(f"/files/{url_name('missing.bin')}", *args)
    assert reply.status == status
    assert isinstance(reply.json()["error"], str)


def test_http_1_0_upload_and_download(live_server: LiveServer, curl: Curl, pattern_file, api: Api) -> None:
    source = pattern_file("old.bin", MIB + 3)
    put = curl(f"/files/{url_name('old.bin')}", "-0", "-T", str(source), "-H", f"Content-MD5: {b64(md5_hex(source))}")
    assert put.status == 200
    get = curl(f"/files/{url_name('old.bin')}", "-0")
    assert get.status == 200
    assert same_bytes(get.body, source)


@pytest.mark.parametrize("how", ["multipart", "T-file", "T-stdin-chunked"])
def test_an_upload_over_the_size_limit_is_413_json(server_factory, pattern_file, how: str) -> None:
    server = server_factory("--max-size", str(MIB))
    token = server.add_user("limited")
    # More than socket buffers absorb, but within what the server reads and discards after
    # refusing (16 MiB, DRAIN_LIMIT in updl_server.uploads): the 413 is never lost to a reset.
    source = pattern_file("huge.bin", 16 * MIB)
    if how == "multipart":
        args = ["-F", f"file=@{source}", "-F", f"md5={md5_hex(source)}", f"{server.url}/upload"]
    else:  # from stdin, no Content-Length: the server can refuse only once it has read past MIB
        args = ["-T", str(source) if how == "T-file" else "-", f"{server.url}/files/{url_name('huge.bin')}"]
    result = run_tool(
        require_tool("curl"),
        "-sS",
        "-w",
        "\n%{http_code}",
        "-H",
        f"Authorization: Bearer {token}",
        *args,
        stdin=source if how == "T-stdin-chunked" else None,
    )
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.rpartition("\n")
    assert status == "413"
    assert json.loads(body) == {"error": "file exceeds the server's size limit", "max_size": MIB}
    assert Api(server.url, token).names() == []
