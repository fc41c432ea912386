"""The S3 blob store end to end: updl-server processes on moto's S3 server over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

import updl
from tests.support.api import Api, md5_hex, read_response
from tests.support.live_server import LiveServer
from tests.support.s3 import PREFIX, Bucket
from tests.support.tus import start_raw_patch
from tests.support.waiting import wait_for

# moto and boto3 are test extras: without them this module skips rather than errors.
pytest.importorskip("boto3")
pytest.importorskip("moto.server")

MIB = 1024 * 1024
BLOB_KEY = re.compile(rf"^{PREFIX}/(\d+)/[0-9a-f]{{32}}$")
TUS = {"Tus-Resumable": "1.0.0"}
StartS3 = Callable[..., LiveServer]


def owner_dirs(bucket: Bucket) -> set[str]:
    """The user-id directories that hold blobs (asserting every blob key has the layout)."""
    keys = bucket.blob_keys()
    assert all(BLOB_KEY.match(k) for k in keys), keys
    return {BLOB_KEY.match(k).group(1) for k in keys}  # type: ignore[union-attr]


def test_round_trip_lays_blobs_out_by_user(
    bucket: Bucket, s3_server_factory: StartS3, make_api: Callable[[LiveServer], Api]
) -> None:
    server = s3_server_factory(bucket)
    alice, bob = make_api(server), make_api(server)
    data = os.urandom(300_000)
    alice.upload("dir/a.bin", data)
    bob.upload("b.bin", b"bob")
    assert alice.names() == ["dir/a.bin"]
    assert len(owner_dirs(bucket)) == 2  # one directory per user
    [stored] = [k for k in bucket.blob_keys() if bucket.read(k) == data]
    assert BLOB_KEY.match(stored)

    whole = alice.get("dir/a.bin")
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["ETag"] == f'"{md5_hex(data)}"'
    part = alice.get("dir/a.bin", Range="bytes=1000-1999")
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert alice.request("DELETE", "/files/dir/a.bin").status_code == 204
    assert stored not in bucket.blob_keys()
    assert alice.get("dir/a.bin").status_code == 404


def test_large_upload_is_a_multipart_object(
    bucket: Bucket, s3_server_factory: StartS3, make_api: Callable[[LiveServer], Api], tmp_path: Path
) -> None:
    server = s3_server_factory(bucket)
    api = make_api(server)
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(12 * MIB + 17))
    with updl.Client(server.url, api.token) as client:
        client.upload(source, "big.bin")
    [key] = bucket.blob_keys()
    head = bucket.client.head_object(Bucket=bucket.name, Key=key)
    assert head["ContentLength"] == 12 * MIB + 17
    assert re.fullmatch(r'"[0-9a-f]{32}-\d+"', head["ETag"])  # completed from parts
    assert bucket.uploads_in_progress() == []
    assert api.get("big.bin").content == source.read_bytes()


def test_mismatch_leaves_no_object_and_no_multipart_upload(
    bucket: Bucket, s3_server_factory: StartS3, make_api: Callable[[LiveServer], Api]
) -> None:
    api = make_api(s3_server_factory(bucket))
    data = os.urandom(12 * MIB)
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    response = api.put("big.bin", data, **{"Content-MD5": wrong})
    assert response.status_code == 409, response.text
    assert bucket.blob_keys() == []
    assert bucket.uploads_in_progress() == []
    assert api.names() == []


def test_too_large_upload_leaves_nothing(
    bucket: Bucket, s3_server_factory: StartS3, make_api: Callable[[LiveServer], Api]
) -> None:
    api = make_api(s3_server_factory(bucket, "--max-size", str(11 * MIB)))
    response = api.request(
        "PUT", "/files/big.bin", data=iter([os.urandom(MIB) for _ in range(12)])
    )  # chunked: no length
    assert response.status_code == 413, response.text
    assert bucket.blob_keys() == [] and bucket.uploads_in_progress() == []


def test_cut_off_upload_leaves_no_multipart_upload(
    bucket: Bucket, s3_server_factory: StartS3, make_api: Callable[[LiveServer], Api]
) -> None:
    api = make_api(s3_server_factory(bucket))
    parts = urlsplit(api.base)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.sendall(
        (
            f"PUT /files/cut.bin HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {api.token}\r\nContent-Length: {20 * MIB}\r\n\r\n"
        ).encode()
        + os.urandom(11 * MIB)
    )
    wait_for(lambda: bucket.uploads_in_progress() != [], "a part to reach the bucket")
    sock.close()
    wait_for(lambda: bucket.uploads_in_progress() == [], "the multipart upload to be aborted")
    assert bucket.blob_keys() == []
    assert api.names() == []


def test_replace_deletes_the_old_object(
    bucket: Bucket, s3_server_factory: StartS3, make_api: Callable[[LiveServer], Api]
) -> None:
    api = make_api(s3_server_factory(bucket))
    api.upload("f.bin", b"first version")
    [old] = bucket.blob_keys()
    api.upload("f.bin", b"second version")
    [new] = bucket.blob_keys()
    assert new != old and bucket.read(new) == b"second version"
    assert api.get("f.bin").content == b"second version"


def tus_create(api: Api, name: str, data: bytes) -> str:
    """Create a tus upload of ``data`` (its MD5 declared); its id."""
    meta = ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in {"name": name, "md5": md5_hex(data)}.items()
    )
    created = api.request("POST", "/tus/", headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": meta})
    assert created.status_code == 201, created.text
    return str(created.headers["Location"].rsplit("/tus/", 1)[1])


def tus_upload(api: Api, name: str, data: bytes, sizes: list[int]) -> None:
    """Create a tus upload of ``data`` and send it in PATCHes of ``sizes`` bytes."""
    path = "/tus/" + tus_create(api, name, data)
    offset = 0
    for size in sizes:
        response = api.request(
            "PATCH",
            path,
            data=data[offset : offset + size],
            headers={**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)},
        )
        assert response.status_code == 204, response.text
        offset += size
    assert offset == len(data)


def test_tus_uploads_compose_and_verify_on_s3(
    bucket: Bucket, s3_server_factory: StartS3, make_api: Callable[[LiveServer], Api]
) -> None:
    api = make_api(s3_server_factory(bucket))
    big = os.urandom(13 * MIB)
    tus_upload(api, "big.bin", big, [6 * MIB, 6 * MIB, MIB])  # composed with UploadPartCopy
    small = os.urandom(300_000)
    tus_upload(api, "small.bin", small, [100_000, 100_000, 100_000])  # streamed through
    assert api.get("big.bin").content == big
    assert api.get("small.bin").content == small
    assert len(bucket.blob_keys()) == 2
    assert bucket.keys(f"{PREFIX}/staging/") == []
    assert bucket.uploads_in_progress() == []


def test_tus_mismatch_keeps_nothing_on_s3(
    bucket: Bucket, s3_server_factory: StartS3, make_api: Callable[[LiveServer], Api]
) -> None:
    api = make_api(s3_server_factory(bucket))
    meta = f"name {base64.b64encode(b'x.bin').decode()},md5 {base64.b64encode(md5_hex(b'other').encode()).decode()}"
    created = api.request("POST", "/tus/", headers={**TUS, "Upload-Length": "3", "Upload-Metadata": meta})
    path = "/tus/" + created.headers["Location"].rsplit("/tus/", 1)[1]
    response = api.request(
        "PATCH",
        path,
        data=b"abc",
        headers={**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
    )
    assert response.status_code == 409, response.text
    assert bucket.keys() == []


def test_presigned_download_is_verified_by_the_sdk(
    bucket: Bucket, s3_server_factory: StartS3, make_api: Callable[[LiveServer], Api], tmp_path: Path
) -> None:
    server = s3_server_factory(bucket, "--s3-presign-downloads")
    api = make_api(server)
    data = os.urandom(12 * MIB + 3)  # multipart: the bucket's ETag is not the MD5
    api.upload("big.bin", data)
    redirect = api.request("GET", "/files/big.bin", allow_redirects=False)
    assert redirect.status_code == 307
    assert redirect.headers["Location"].startswith(f"{bucket.endpoint}/{bucket.name}/{PREFIX}/")
    assert redirect.headers["ETag"] == f'"{md5_hex(data)}"'
    assert base64.b64decode(redirect.headers["Content-MD5"]).hex() == md5_hex(data)

    with updl.Client(server.url, api.token) as client:
        info = client.download("big.bin", tmp_path / "out.bin")
    assert info.md5 == md5_hex(data) and (tmp_path / "out.bin").read_bytes() == data
    ranged = api.get("big.bin", Range="bytes=5-9")  # followed, without the token
    assert ranged.status_code == 206 and ranged.content == data[5:10]
    assert api.request("HEAD", "/files/big.bin").status_code == 200  # HEAD is answered here


@pytest.mark.parametrize(
    "name, encoded",
    [
        ("site/evil.html", "evil.html"),
        ('docs/r\u00e9sum\u00e9 "final"; x.svg', "r%C3%A9sum%C3%A9%20%22final%22%3B%20x.svg"),
    ],
    ids=["html", "unicode-and-quotes"],
)
def test_presigned_download_is_an_attachment(
    bucket: Bucket, s3_server_factory: StartS3, make_api: Callable[[LiveServer], Api], name: str, encoded: str
) -> None:
    server = s3_server_factory(bucket, "--s3-presign-downloads")
    api = make_api(server)
    data = b"<!doctype html><script>alert(1)</script>"
    api.upload(name, data)
    redirect = api.request("GET", "/files/" + name, allow_redirects=False)
    assert redirect.status_code == 307
    # What the bucket answers at the redirect's target (no token: the URL is presigned).
    answer = requests.get(redirect.headers["Location"], timeout=30)
    assert answer.status_code == 200 and answer.content == data
    assert answer.headers["Content-Disposition"] == f"attachment; filename*=UTF-8''{encoded}"
    assert answer.headers["Content-Type"] == "application/octet-stream"


def test_two_servers_on_one_bucket_and_database_are_one_service(
    bucket: Bucket, s3_server_factory: StartS3, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    first = s3_server_factory(bucket, "--db-url", db)
    second = s3_server_factory(bucket, "--db-url", db)
    token = first.add_user("shared")
    via_first, via_second = Api(first.url, token), Api(second.url, token)
    data = os.urandom(6 * MIB)
    via_first.upload("f.bin", data)
    assert via_second.get("f.bin").content == data
    via_second.upload("f.bin", b"replaced")
    assert via_first.get("f.bin").content == b"replaced"
    assert len(bucket.blob_keys()) == 1
    assert via_first.request("DELETE", "/files/f.bin").status_code == 204
    assert via_second.get("f.bin").status_code == 404 and bucket.blob_keys() == []


def test_sweep_aborts_stale_multipart_uploads_and_removes_orphans(bucket: Bucket) -> None:
    from updl_server.storage.s3 import S3BlobStore

    store = S3BlobStore(bucket.name, PREFIX, client=bucket.client, orphan_grace=0, multipart_grace=0)
    stale = bucket.client.create_multipart_upload(Bucket=bucket.name, Key=f"{PREFIX}/1/x")
    outside = bucket.client.create_multipart_upload(Bucket=bucket.name, Key="elsewhere/x")
    kept, orphan = store.begin(1), store.begin(1)
    kept.write(b"kept")
    orphan.write(b"orphan")
    kept_location = kept.commit()
    orphan.commit()
    store.staging.create("a" * 32)
    store.staging.create("b" * 32)

    report = store.sweep(lambda location: location == kept_location)
    assert (report.temp_dirs, report.orphan_blobs) == (1, 1)
    assert [u["UploadId"] for u in bucket.uploads_in_progress()] == [outside["UploadId"]]
    assert stale["UploadId"] != outside["UploadId"]
    assert bucket.blob_keys() == [f"{PREFIX}/{kept_location}"]
    assert store.staging.sweep(lambda upload_id: upload_id == "a" * 32) == 1
    assert bucket.keys(f"{PREFIX}/staging/") == [f"{PREFIX}/staging/{'a' * 32}/upload"]


def test_staging_hold_is_exclusive_until_released(bucket: Bucket) -> None:
    from updl_server.storage import StagedUploadGoneError, StagingBusyError
    from updl_server.storage.s3 import S3BlobStore

    store = S3BlobStore(bucket.name, PREFIX, client=bucket.client)
    store.staging.create("c" * 32)
    held = store.staging.claim("c" * 32)
    with pytest.raises(StagingBusyError):
        store.staging.claim("c" * 32)
    held.append(b"abc")
    held.sync()
    held.close()
    again = store.staging.claim("c" * 32)
    assert again.size() == 3 and b"".join(again.chunks()) == b"abc"
    again.discard()
    again.close()
    with pytest.raises(StagedUploadGoneError):
        store.staging.claim("c" * 32)
    assert bucket.keys() == []


def test_storage_option_is_checked(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from updl_server.cli import main

    result = CliRunner().invoke(main, ["run", "--data-dir", str(tmp_path), "--storage", "ftp://x"])
    assert result.exit_code == 2 and "s3://BUCKET/PREFIX" in result.output
    result = CliRunner().invoke(main, ["run", "--data-dir", str(tmp_path), "--s3-presign-downloads"])
    assert result.exit_code == 2 and "--storage" in result.output


@pytest.mark.parametrize(("sent", "kept"), [(7 * MIB, 7 * MIB), (3 * MIB, 0)], ids=["a-part", "under-a-part"])
def test_stalled_tus_patch_keeps_whole_parts_on_s3(
    bucket: Bucket, s3_server_factory: StartS3, make_api: Callable[[LiveServer], Api], sent: int, kept: int
) -> None:
    # A PATCH without a checksum that stalls keeps what arrived if it fills an S3 part
    # (5 MiB): smaller tails are sent again, so every part but the last stays composable.
    api = make_api(s3_server_factory(bucket, "--body-timeout", "2"))
    data = os.urandom(12 * MIB)
    path = "/tus/" + tus_create(api, "kept.bin", data)
    sock = start_raw_patch(api, path, 0, len(data), data[:sent])
    status, _ = read_response(sock)  # the 408, once the upload is let go
    sock.close()
    assert status == 408
    head = api.request("HEAD", path, headers=TUS)
    assert int(head.headers["Upload-Offset"]) == kept
    resumed = api.request(
        "PATCH",
        path,
        data=data[kept:],
        headers={**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": str(kept)},
    )
    assert resumed.status_code == 204, resumed.text
    assert api.get("kept.bin").content == data
    assert bucket.keys(f"{PREFIX}/staging/") == []
