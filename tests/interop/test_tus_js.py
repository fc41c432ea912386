"""tus-js-client (Node.js), the reference tus client, against the server's tus 1.0 endpoint.

What a third-party tus client can do per docs/api.md: send the token header, declare the
file's MD5 as ``md5`` metadata (verified at completion), or declare none and rely on the
server's own MD5. Each upload is checked by downloading it with the updl SDK.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.api import Api
from tests.support.interop import MIB, flipped, md5_hex, same_bytes, sdk_download
from tests.support.live_server import LiveServer
from tests.support.relay import Relay
from tests.support.tus import staging
from tests.support.waiting import wait_for

SIZE = 3 * MIB + 11  # three full 1 MiB PATCHes and a short fourth


@pytest.fixture
def upload(live_server: LiveServer, token: str, tus_js) -> Callable[..., dict[str, Any]]:
    """``upload(path, metadata, **options)``: one run of tus-js-client as this test's user."""

    def run(path: Path, metadata: dict[str, str], **options: Any) -> dict[str, Any]:
        return tus_js(endpoint=f"{live_server.url}/tus/", token=token, path=str(path), metadata=metadata, **options)

    return run


def tus_head(url: str, token: str) -> requests.Response:
    """``HEAD`` of a tus upload URL, as tus asks for an upload's state."""
    return requests.head(url, headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}, timeout=30)


@pytest.mark.parametrize("chunk_size", [None, MIB], ids=["default-settings", "1MiB-chunks"])
@pytest.mark.parametrize("key", ["name", "filename"])
def test_upload_with_md5_metadata_then_updl_download(
    live_server: LiveServer,
    token: str,
    upload,
    pattern_file,
    api: Api,
    tmp_path: Path,
    chunk_size: int | None,
    key: str,
) -> None:
    source = pattern_file("tus.bin", SIZE)
    options = {} if chunk_size is None else {"chunkSize": chunk_size}
    result = upload(source, {key: "uploads/tus.bin", "md5": md5_hex(source)}, **options)
    assert result["ok"], result
    # The completing answer says what was stored (docs/api.md, "Completion").
    assert result["headers"]["ETag"] == f'"{md5_hex(source)}"'
    assert result["headers"]["Upload-Md5"] == md5_hex(source)
    if chunk_size is not None:
        assert result["chunks"] == [MIB, 2 * MIB, 3 * MIB, SIZE]
    assert api.names() == ["uploads/tus.bin"]
    info = sdk_download(live_server, token, "uploads/tus.bin", tmp_path / "copy")
    assert info.md5 == md5_hex(source)
    assert same_bytes(tmp_path / "copy", source)


def test_upload_without_md5_is_stored_with_the_servers_md5(
    live_server: LiveServer, token: str, upload, pattern_file, tmp_path: Path
) -> None:
    source = pattern_file("plain.bin", SIZE)
    result = upload(source, {"filename": "plain.bin"}, chunkSize=MIB)
    assert result["ok"], result
    assert result["headers"]["Upload-Md5"] == md5_hex(source)
    sdk_download(live_server, token, "plain.bin", tmp_path / "copy")
    assert same_bytes(tmp_path / "copy", source)


def test_a_wrong_md5_fails_with_409_and_nothing_is_stored(upload, pattern_file, api: Api) -> None:
    source = pattern_file("bad.bin", SIZE)
    result = upload(source, {"name": "bad.bin", "md5": flipped(md5_hex(source))}, chunkSize=MIB, retryDelays=None)
    assert not result["ok"]
    assert result["status"] == 409, result
    assert "response code: 409" in result["error"]
    assert api.names() == []


def test_an_aborted_upload_resumes_in_a_new_process(
    live_server: LiveServer, token: str, upload, pattern_file, api: Api, tmp_path: Path
) -> None:
    source = pattern_file("resume.bin", SIZE)
    storage = tmp_path / "tus-urls.json"
    metadata = {"name": "resume.bin", "md5": md5_hex(source)}

    first = upload(source, metadata, chunkSize=MIB, urlStorage=str(storage), abortAfterChunks=1)
    assert first["aborted"] and first["chunks"] == [MIB], first
    state = tus_head(first["url"], token)
    assert (state.status_code, state.headers["Upload-Offset"]) == (200, str(MIB))
    assert api.names() == []  # an unfinished upload is not a file

    second = upload(source, metadata, chunkSize=MIB, urlStorage=str(storage), resume=True)
    assert second["ok"] and second["resumed"], second
    assert second["url"] == first["url"]
    assert second["chunks"] == [2 * MIB, 3 * MIB, SIZE]  # it went on from 1 MiB
    assert second["headers"]["Upload-Md5"] == md5_hex(source)
    sdk_download(live_server, token, "resume.bin", tmp_path / "copy")
    assert same_bytes(tmp_path / "copy", source)


@pytest.mark.parametrize("chunk_size", [None, MIB], ids=["one-request", "1MiB-chunks"])
def test_upload_data_during_creation(
    live_server: LiveServer, token: str, upload, pattern_file, tmp_path: Path, chunk_size: int | None
) -> None:
    # creation-with-upload: the POST carries the first chunk (with default settings, the whole
    # file, so the 201 itself completes the upload and must carry the completion headers).
    source = pattern_file("early.bin", SIZE)
    options = {} if chunk_size is None else {"chunkSize": chunk_size}
    result = upload(source, {"name": "early.bin", "md5": md5_hex(source)}, uploadDataDuringCreation=True, **options)
    assert result["ok"], result
    assert result["headers"]["ETag"] == f'"{md5_hex(source)}"'
    assert result["headers"]["Upload-Md5"] == md5_hex(source)
    sdk_download(live_server, token, "early.bin", tmp_path / "copy")
    assert same_bytes(tmp_path / "copy", source)


def test_a_terminated_upload_is_gone(token: str, upload, pattern_file, api: Api) -> None:
    source = pattern_file("gone.bin", SIZE)
    result = upload(source, {"name": "gone.bin"}, chunkSize=MIB, abortAfterChunks=1, terminate=True)
    assert result["aborted"] and "error" not in result, result  # DELETE answered 204
    assert tus_head(result["url"], token).status_code == 404
    assert api.names() == []


def test_an_invalid_name_is_refused_at_creation(upload, pattern_file, api: Api) -> None:
    source = pattern_file("bad-name.bin", 1000)
    result = upload(source, {"name": "a/../b.bin"}, retryDelays=None)
    assert (result["ok"], result["status"]) == (False, 400), result
    assert "invalid name" in result["error"]
    assert api.names() == []


def test_a_file_over_the_size_limit_is_refused_at_creation(server_factory, tus_js, pattern_file) -> None:
    server = server_factory("--max-size", str(MIB))
    token = server.add_user("limited")
    source = pattern_file("huge.bin", MIB + 1)
    result = tus_js(
        endpoint=f"{server.url}/tus/", token=token, path=str(source), metadata={"name": "huge.bin"}, retryDelays=None
    )
    assert (result["ok"], result["status"], result["chunks"]) == (False, 413, []), result
    assert Api(server.url, token).names() == []


@pytest.mark.parametrize("with_md5", [True, False], ids=["md5-metadata", "no-md5"])
def test_parallel_uploads_are_concatenated_then_updl_get_verifies(
    live_server: LiveServer, token: str, upload, pattern_file, run_updl, tmp_path: Path, with_md5: bool
) -> None:
    # parallelUploads makes tus-js-client create four partial uploads (Upload-Concat:
    # partial), send them at once, then join them with a final one (Upload-Concat:
    # final;...) that carries the name and, here, the whole file's MD5 (docs/api.md,
    # "Concatenation"). The server verifies that MD5 before it stores the file.
    size = 24 * MIB + 13
    source = pattern_file("parallel.bin", size)
    metadata = {"name": "parallel.bin", **({"md5": md5_hex(source)} if with_md5 else {})}
    result = upload(source, metadata, parallelUploads=4, retryDelays=None)
    assert result["ok"], result
    got = run_updl(live_server, token, "get", "parallel.bin", "-o", str(tmp_path / "copy"))
    assert got.returncode == 0, got.stderr
    assert same_bytes(tmp_path / "copy", source)
    info = Api(live_server.url, token).request("GET", "/info/parallel.bin").json()
    assert info["md5"] == md5_hex(source) and info["size"] == size


def test_parallel_uploads_with_a_wrong_md5_store_nothing(upload, pattern_file, api: Api) -> None:
    source = pattern_file("parallel-bad.bin", 4 * MIB + 1)
    result = upload(source, {"name": "parallel-bad.bin", "md5": "0" * 32}, parallelUploads=4, retryDelays=None)
    assert not result["ok"], result
    assert 400 <= (result["status"] or 0) < 500, result
    assert "parallel-bad.bin" not in api.names()


def test_a_dropped_single_patch_upload_resumes_where_the_server_got_to(
    live_server: LiveServer, token: str, tus_js, pattern_file, tmp_path: Path
) -> None:
    # tus-js-client's defaults send the whole file in ONE PATCH with no checksum. The
    # connection is dropped part way; the server keeps what it received (docs/api.md,
    # "Interrupted PATCHes"), and the next run resends only the rest.
    size = 40 * MIB + 7
    source = pattern_file("dropped.bin", size)
    relay = Relay(int(live_server.url.rsplit(":", 1)[1]), stall_up_after=30 * MIB)
    storage = tmp_path / "tus-urls.json"
    metadata = {"name": "dropped.bin", "md5": md5_hex(source)}
    options = {"token": token, "path": str(source), "metadata": metadata, "urlStorage": str(storage)}
    first: dict[str, Any] = {}
    area = staging(live_server)
    earlier = set(area.iterdir()) if area.exists() else set()  # the shared server holds other tests' uploads
    try:
        run = threading.Thread(
            target=lambda: first.update(tus_js(endpoint=f"{relay.url}/tus/", retryDelays=None, **options))
        )
        run.start()
        assert relay.stalled.wait(60), "the upload never reached 30 MiB"
        received = relay.up  # every byte delivered to the server (headers included)
        # Let the server take in what it was sent (the last ~1 MiB batch waits for more).
        [staged] = set(area.iterdir()) - earlier
        wait_for(lambda: staged.stat().st_size >= received - 2 * MIB, "the server to read what it was sent")
        relay.drop_connections()
        run.join(60)
        assert not first["ok"] and first["url"], first
        direct = first["url"].replace(relay.url, live_server.url)  # the relay still holds back
        wait_for(lambda: int(tus_head(direct, token).headers["Upload-Offset"]) > 0, "the server to keep bytes")
        kept = int(tus_head(direct, token).headers["Upload-Offset"])
        print(f"received {received} bytes, kept {kept}: {kept / received:.1%}")
        assert kept >= 0.9 * received

        relay.reset()  # the second run goes through the same relay, which now counts what it resends
        second = tus_js(endpoint=f"{relay.url}/tus/", resume=True, **options)
        assert second["ok"] and second["resumed"], second
        assert second["url"] == first["url"]
        assert relay.up <= size - kept + 64 * 1024  # HEAD, then the rest from the kept offset
        assert second["headers"]["Upload-Md5"] == md5_hex(source)
    finally:
        relay.close()
    sdk_download(live_server, token, "dropped.bin", tmp_path / "copy")
    assert same_bytes(tmp_path / "copy", source)
