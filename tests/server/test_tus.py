"""The tus 1.0 endpoints against a live server: protocol answers, integrity, ownership, expiry."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import requests
import sqlalchemy

from tests.support.api import Api, md5_hex
from tests.support.live_server import LiveServer
from tests.support.tus import STREAM, TUS, create, created, metadata, offset_of, patch, staging


def test_options_advertises_the_protocol(live_server: LiveServer) -> None:
    response = requests.options(f"{live_server.url}/tus/", timeout=10)
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "checksum",
        "termination",
        "expiration",
        "concatenation",
    }
    assert response.headers["Tus-Checksum-Algorithm"] == "crc32,md5,sha1,sha256"
    assert int(response.headers["Tus-Max-Size"]) == 10 * 1024**3


def test_chunks_with_checksums_become_a_verified_file(api: Api) -> None:
    data = os.urandom(400_000)
    path = created(api, len(data), "dir/big.bin", md5=md5_hex(data))
    for algorithm, (start, end) in zip(
        ("md5", "sha1", "sha256", "crc32"),
        ((0, 100_000), (100_000, 200_000), (200_000, 300_000), (300_000, 400_000)),
        strict=True,
    ):
        response = patch(api, path, start, data[start:end], algorithm)
        assert response.status_code == 204, response.text
        assert response.headers["Upload-Offset"] == str(end)
        assert response.headers["Tus-Resumable"] == "1.0.0"
        if end < len(data):
            assert "Upload-Md5" not in response.headers and "ETag" not in response.headers
    # The completing answer says what was stored (updl's extension).
    assert response.headers["Upload-Md5"] == md5_hex(data)
    assert response.headers["ETag"] == f'"{md5_hex(data)}"' and "GMT" in response.headers["Last-Modified"]
    assert api.names() == ["dir/big.bin"]
    got = api.get("dir/big.bin")
    assert got.content == data and got.headers["ETag"] == f'"{md5_hex(data)}"'


def test_protocol_errors_are_json_and_leave_the_offset(api: Api) -> None:
    data = os.urandom(1000)
    path = created(api, len(data))
    assert patch(api, path, 0, data[:400]).status_code == 204
    cases = [
        (
            api.request(
                "PATCH", path, data=data[400:], headers={**STREAM, "Upload-Offset": "400", "Tus-Resumable": "0.2.2"}
            ),
            412,
        ),
        (api.request("HEAD", path), 412),
        (patch(api, path, 0, data[:400]), 409),
        (patch(api, path, 400, data[400:], digest=b"\0" * 16), 460),
        (patch(api, path, 400, data[400:], "crc32", digest=b"\0" * 4), 460),
        (patch(api, path, 400, data[400:] + b"more"), 400),
        (api.request("PATCH", path, data=data[400:], headers={**TUS, "Upload-Offset": "400"}), 415),
        (patch(api, path, 400, data[400:], "sha512", b"1234"), 400),  # not offered
    ]
    for response, status in cases:
        assert response.status_code == status, (status, response.text)
        if response.request.method != "HEAD":  # a HEAD answer has no body
            assert "error" in response.json()
        assert response.headers["Tus-Resumable"] == "1.0.0"
    assert cases[2][0].json()["offset"] == 400
    assert offset_of(api, path) == 400
    assert patch(api, path, 400, data[400:]).status_code == 204
    assert api.get("big.bin").content == data


def test_whole_file_md5_mismatch_keeps_nothing(api: Api) -> None:
    data = os.urandom(5000)
    path = created(api, len(data), md5="0" * 32)
    response = patch(api, path, 0, data)
    assert response.status_code == 409
    assert response.json() == {
        "error": "checksum failed - please attempt reuploading",
        "expected": "0" * 32,
        "actual": md5_hex(data),
        "algorithm": "md5",
    }
    assert api.names() == []
    assert api.request("HEAD", path, headers=TUS).status_code == 404


def test_upload_md5_on_the_completing_patch_is_verified_before_commit(api: Api) -> None:
    # updl's extension: no md5 at creation, the whole file's MD5 on the last PATCH.
    data = os.urandom(300_000)
    path = created(api, len(data), "late.bin")
    assert patch(api, path, 0, data[:100_000]).status_code == 204
    wrong = api.request(
        "PATCH", path, data=data[100_000:], headers={**STREAM, "Upload-Offset": "100000", "Upload-Md5": "0" * 32}
    )
    assert wrong.status_code == 409
    assert wrong.json() == {
        "error": "checksum failed - please attempt reuploading",
        "expected": "0" * 32,
        "actual": md5_hex(data),
        "algorithm": "md5",
    }
    assert api.names() == []  # refused before commit: nothing listed, the upload is gone
    assert api.request("HEAD", path, headers=TUS).status_code == 404

    path = created(api, len(data), "late.bin")
    assert patch(api, path, 0, data[:100_000]).status_code == 204
    done = api.request(
        "PATCH",
        path,
        data=data[100_000:],
        headers={**STREAM, "Upload-Offset": "100000", "Upload-Md5": md5_hex(data).upper()},
    )
    assert done.status_code == 204, done.text
    assert done.headers["Upload-Md5"] == md5_hex(data)
    assert api.get("late.bin").content == data


def test_upload_md5_only_on_the_patch_that_completes(api: Api) -> None:
    data = os.urandom(3000)
    path = created(api, len(data))
    early = {**STREAM, "Upload-Offset": "0", "Upload-Md5": md5_hex(data)}
    sized = api.request("PATCH", path, data=data[:1000], headers=early)
    assert sized.status_code == 400 and "Upload-Md5" in sized.json()["error"]
    chunked = api.request("PATCH", path, data=iter([data[:1000]]), headers=early)  # no length
    assert chunked.status_code == 400 and "Upload-Md5" in chunked.json()["error"]
    assert offset_of(api, path) == 0  # refused bodies are not kept
    malformed = api.request("PATCH", path, data=data, headers={**early, "Upload-Md5": "xyz"})
    assert malformed.status_code == 400
    assert api.request("PATCH", path, data=data, headers=early).status_code == 204
    assert api.get("big.bin").content == data


def test_upload_md5_on_a_creation_that_completes(api: Api) -> None:
    data = os.urandom(2000)
    headers = {**STREAM, "Upload-Length": str(len(data)), "Upload-Metadata": metadata(name="at-once.bin")}
    wrong = api.request("POST", "/tus/", data=data, headers={**headers, "Upload-Md5": "0" * 32})
    assert wrong.status_code == 409 and api.names() == []
    bodiless = api.request(
        "POST",
        "/tus/",
        headers={
            **TUS,
            "Upload-Length": "10",
            "Upload-Md5": md5_hex(data),
            "Upload-Metadata": metadata(name="at-once.bin"),
        },
    )
    assert bodiless.status_code == 400
    right = api.request("POST", "/tus/", data=data, headers={**headers, "Upload-Md5": md5_hex(data)})
    assert right.status_code == 201 and right.headers["Upload-Md5"] == md5_hex(data)
    assert api.get("at-once.bin").content == data


def test_without_any_md5_the_file_is_stored_as_received(api: Api) -> None:
    data = os.urandom(4000)
    path = created(api, len(data), "plain.bin")
    response = patch(api, path, 0, data, algorithm=None)
    assert response.status_code == 204 and response.headers["Upload-Md5"] == md5_hex(data)
    assert api.get("plain.bin").content == data


def test_a_completed_upload_answers_head_until_it_expires(
    server_factory: Callable[..., LiveServer], make_api: Callable[[LiveServer], Api]
) -> None:
    server = server_factory()
    api = make_api(server)
    data = os.urandom(2000)
    path = created(api, len(data), "done.bin")
    assert patch(api, path, 0, data).status_code == 204
    head = api.request("HEAD", path, headers=TUS)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == str(len(data))
    assert head.headers["Upload-Md5"] == md5_hex(data)
    assert head.headers["ETag"] == f'"{md5_hex(data)}"'
    assert "GMT" in head.headers["Last-Modified"] and "GMT" in head.headers["Upload-Expires"]
    again = patch(api, path, 0, data)  # a client that lost the answer and tries again
    assert again.status_code == 409 and again.json()["offset"] == len(data)
    other = Api(server.url, server.add_user("someone-else"))
    assert other.request("HEAD", path, headers=TUS).status_code == 404
    assert api.request("DELETE", path, headers=TUS).status_code == 204  # forgets the upload...
    assert api.request("HEAD", path, headers=TUS).status_code == 404
    assert api.get("done.bin").content == data  # ...not the file

    path = created(api, len(data), "done.bin")
    assert patch(api, path, 0, data).status_code == 204
    engine = sqlalchemy.create_engine(f"sqlite:///{server.data_dir.resolve() / 'updl.db'}")
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE tus_completed SET expires = '2000-01-01 00:00:00'"))
    assert api.request("HEAD", path, headers=TUS).status_code == 404
    server.restart()  # the startup sweep forgets expired completions
    with engine.begin() as conn:
        assert conn.execute(sqlalchemy.text("SELECT count(*) FROM tus_completed")).scalar() == 0
    engine.dispose()


def test_creation_rules(
    api: Api, server_factory: Callable[..., LiveServer], make_api: Callable[[LiveServer], Api]
) -> None:
    assert create(api, 10, "../x").status_code == 400
    assert create(api, 10, "ok", md5="nothex").status_code == 400
    assert api.request("POST", "/tus/", headers={**TUS, "Upload-Length": "10"}).status_code == 400
    assert api.request("POST", "/tus/", headers={**TUS, "Upload-Defer-Length": "1"}).status_code == 400
    no_token = requests.post(f"{api.base}/tus/", headers={**TUS, "Upload-Length": "1"}, timeout=10)
    assert no_token.status_code == 401 and "error" in no_token.json()
    small = make_api(server_factory("--max-size", "1000"))
    too_big = create(small, 1001)
    assert too_big.status_code == 413 and too_big.json()["max_size"] == 1000
    assert created(small, 1000).startswith("/tus/")


def test_filename_metadata_and_creation_with_upload(api: Api) -> None:
    data = os.urandom(2000)
    response = api.request(
        "POST",
        "/tus/",
        data=data,
        headers={
            **STREAM,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(filename="from-filename.bin", md5=md5_hex(data)),
            "Upload-Checksum": "sha1 " + base64.b64encode(hashlib.sha1(data).digest()).decode(),
        },
    )
    assert response.status_code == 201, response.text
    assert response.headers["Upload-Offset"] == str(len(data))
    assert api.get("from-filename.bin").content == data


def test_empty_upload_is_stored_at_creation(api: Api) -> None:
    created(api, 0, "empty.bin", md5=md5_hex(b""))
    assert api.get("empty.bin").content == b""


def test_uploads_belong_to_their_creator(api: Api, live_server: LiveServer) -> None:
    other = Api(live_server.url, live_server.add_user(f"intruder{os.getpid()}-{id(api)}"))
    path = created(api, 10)
    assert other.request("HEAD", path, headers=TUS).status_code == 404
    assert patch(other, path, 0, b"0123456789").status_code == 404
    assert other.request("DELETE", path, headers=TUS).status_code == 404
    assert offset_of(api, path) == 0


def test_termination_deletes_the_staged_bytes(
    server_factory: Callable[..., LiveServer], make_api: Callable[[LiveServer], Api]
) -> None:
    server = server_factory()
    api = make_api(server)
    path = created(api, 100)
    assert patch(api, path, 0, b"x" * 50).status_code == 204
    assert [p.stat().st_size for p in staging(server).iterdir()] == [50]
    assert api.request("DELETE", path, headers=TUS).status_code == 204
    assert api.request("HEAD", path, headers=TUS).status_code == 404
    assert list(staging(server).iterdir()) == []


def test_expired_uploads_answer_410_and_are_swept(
    server_factory: Callable[..., LiveServer], make_api: Callable[[LiveServer], Api]
) -> None:
    server = server_factory()
    api = make_api(server)
    first, second, alive = created(api, 100), created(api, 100), created(api, 100)
    response = api.request("HEAD", alive, headers=TUS)
    assert "GMT" in response.headers["Upload-Expires"]
    engine = sqlalchemy.create_engine(f"sqlite:///{server.data_dir.resolve() / 'updl.db'}")
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text("UPDATE tus_uploads SET expires = '2000-01-01 00:00:00' WHERE id IN (:a, :b)"),
            {"a": first.rsplit("/", 1)[1], "b": second.rsplit("/", 1)[1]},
        )
    engine.dispose()
    gone = patch(api, first, 0, b"x")
    assert gone.status_code == 410 and gone.json()["error"] == "upload expired"
    assert api.request("HEAD", first, headers=TUS).status_code == 404  # removed on sight
    assert len(list(staging(server).iterdir())) == 2
    server.restart()  # the startup sweep removes the other expired upload
    assert sorted(p.name for p in staging(server).iterdir()) == [alive.rsplit("/", 1)[1]]
    assert Api(server.url, api.token).request("HEAD", second, headers=TUS).status_code == 404


def test_concurrent_patch_is_refused_with_423(
    server_factory: Callable[..., LiveServer], make_api: Callable[[LiveServer], Api]
) -> None:
    server = server_factory()
    api = make_api(server)
    data = os.urandom(3 * 1024 * 1024)
    path = created(api, len(data), md5=md5_hex(data))
    release = threading.Event()
    half = 2 * 1024 * 1024  # more than one ~1 MiB write batch, so bytes land in staging

    def slow_body() -> Iterator[bytes]:
        yield data[:half]
        release.wait(30)
        yield data[half:]

    result: dict[str, requests.Response] = {}
    first = threading.Thread(
        target=lambda: result.setdefault("first", patch(api, path, 0, slow_body(), algorithm=None))
    )
    first.start()
    staged = staging(server) / path.rsplit("/", 1)[1]
    for _ in range(3000):  # bounded poll: the first PATCH holds the upload once bytes land
        if staged.stat().st_size > 0:
            break
        threading.Event().wait(0.01)
    second = patch(api, path, 0, data)
    release.set()
    first.join(30)
    assert second.status_code == 423, second.text
    assert result["first"].status_code == 204
    assert api.get("big.bin").content == data


def test_patches_may_land_on_different_processes(tmp_path: Path) -> None:
    # Two server processes on one data dir; the last PATCH reaches the one that saw none
    # of the earlier bytes, so it re-reads the staged file for the MD5. Leftover bytes
    # from a "crashed" writer (past the catalog's offset) are cut off first.
    one, two = LiveServer(data_dir=tmp_path), LiveServer(data_dir=tmp_path)
    one.start()
    two.start()
    try:
        token = one.add_user("shared")
        a, b = Api(one.url, token), Api(two.url, token)
        data = os.urandom(250_000)
        path = created(a, len(data), md5=md5_hex(data))
        assert patch(a, path, 0, data[:100_000]).status_code == 204
        with open(staging(one) / path.rsplit("/", 1)[1], "ab") as leftover:
            leftover.write(b"garbage from a writer that died")
        assert offset_of(b, path) == 100_000
        assert patch(b, path, 100_000, data[100_000:]).status_code == 204
        assert a.get("big.bin").content == data
        assert b.request("GET", "/info/big.bin").json()["md5"] == md5_hex(data)
    finally:
        one.stop()
        two.stop()


def test_tuspy_client_interoperates(api: Api, tmp_path: Path) -> None:
    from tusclient import client as tus_client

    data = os.urandom(700_000)
    source = tmp_path / "via-tuspy.bin"
    source.write_bytes(data)
    client = tus_client.TusClient(f"{api.base}/tus/", headers={"Authorization": f"Bearer {api.token}"})
    with open(source, "rb") as stream:  # given a path, tuspy opens the file and never closes it
        uploader = client.uploader(
            file_stream=stream,
            chunk_size=256 * 1024,
            upload_checksum=True,
            metadata={"filename": "via-tuspy.bin", "md5": md5_hex(data)},
        )
        uploader.upload()
    assert "via-tuspy.bin" in api.names()
    got = api.get("via-tuspy.bin")
    assert hashlib.md5(got.content).hexdigest() == md5_hex(data)
