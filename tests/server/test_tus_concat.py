"""tus Concatenation (``Upload-Concat``): parallel partial uploads joined into one file.

Each backend (local disk, S3 on moto) and catalog (SQLite, PostgreSQL when
``TEST_DATABASE_URL`` is set) gets the same walk: parts sent in any order,
the final upload verified by the whole file's MD5, nothing kept on a mismatch,
and the hostile cases (someone else's parts, incomplete parts, too many) a 400.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Iterator

import pytest

from tests.support.api import Api, md5_hex
from tests.support.live_server import LiveServer
from tests.support.tus import TUS, final, metadata, partial, patch, sent_part, staging
from updl_server.tus.concat import MAX_PARTS

MIB = 1024 * 1024


@pytest.fixture(params=["local", "s3", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[LiveServer, str]]:
    """A server on local disk + SQLite, on S3 (moto), or on local disk + PostgreSQL."""
    if request.param == "local":
        yield request.getfixturevalue("server_factory")(), "local"
    elif request.param == "s3":
        pytest.importorskip("boto3")
        pytest.importorskip("moto.server")
        bucket = request.getfixturevalue("bucket")
        yield request.getfixturevalue("s3_server_factory")(bucket), "s3"
    else:
        database = request.getfixturevalue("pg_database")
        yield request.getfixturevalue("server_factory")("--db-url", database), "postgres"


def test_parts_sent_out_of_order_become_one_verified_file(
    backend: tuple[LiveServer, str], make_api: Callable[[LiveServer], Api]
) -> None:
    server, _ = backend
    api = make_api(server)
    options = api.request("OPTIONS", "/tus/")
    assert "concatenation" in options.headers["Tus-Extension"].split(",")
    data = os.urandom(18 * MIB + 12345)
    cuts = [0, 6 * MIB, 12 * MIB, len(data)]
    pieces = [data[a:b] for a, b in itertools.pairwise(cuts)]
    paths = [partial(api, len(p)) for p in pieces]
    for index in (2, 0, 1):  # completion order does not matter, the final's order does
        assert patch(api, paths[index], 0, pieces[index], algorithm="crc32").status_code == 204
    head = api.request("HEAD", paths[1], headers=TUS)
    assert head.headers["Upload-Concat"] == "partial" and head.headers["Upload-Offset"] == str(len(pieces[1]))
    assert api.names() == []  # complete parts are not files

    done = final(api, [server.url + p for p in paths], md5=md5_hex(data))  # absolute URLs, as tus-js-client
    assert done.status_code == 201, done.text
    assert done.headers["Upload-Md5"] == md5_hex(data) and done.headers["Upload-Offset"] == str(len(data))
    got = api.get("joined.bin")
    assert got.content == data
    ranged = api.get("joined.bin", Range=f"bytes={6 * MIB - 10}-{6 * MIB + 9}")  # across a join
    assert ranged.status_code == 206 and ranged.content == data[6 * MIB - 10 : 6 * MIB + 10]
    # The final upload answers HEAD as completed; the parts are used up.
    final_path = "/tus/" + done.headers["Location"].rsplit("/tus/", 1)[1]
    assert api.request("HEAD", final_path, headers=TUS).headers["Upload-Md5"] == md5_hex(data)
    assert api.request("HEAD", paths[0], headers=TUS).status_code == 404
    again = final(api, paths, name="twice.bin")
    assert again.status_code == 400, again.text


def test_small_parts_and_upload_md5_header(
    backend: tuple[LiveServer, str], make_api: Callable[[LiveServer], Api]
) -> None:
    """Parts under S3's 5 MiB minimum still join (streamed there), checked by ``Upload-Md5``."""
    server, _ = backend
    api = make_api(server)
    pieces = [b"alpha-", b"", b"beta-" * 1000, b"gamma"]
    data = b"".join(pieces)
    paths = [sent_part(api, p) if p else partial(api, 0) for p in pieces]
    done = final(api, paths, name="small.txt", **{"Upload-Md5": md5_hex(data)})
    assert done.status_code == 201, done.text
    assert api.get("small.txt").content == data
    assert api.request("GET", "/info/small.txt").json()["md5"] == md5_hex(data)


def test_a_wrong_md5_keeps_nothing(backend: tuple[LiveServer, str], make_api: Callable[[LiveServer], Api]) -> None:
    server, kind = backend
    api = make_api(server)
    paths = [sent_part(api, b"x" * 1000), sent_part(api, b"y" * 1000)]
    wrong = hashlib.md5(b"something else").hexdigest()
    refused = final(api, paths, md5=wrong)
    assert refused.status_code == 409, refused.text
    assert "error" in refused.json()
    assert api.names() == []
    for path in paths:
        assert api.request("HEAD", path, headers=TUS).status_code == 404  # the parts are gone too
    if kind != "s3":
        assert list(staging(server).iterdir()) == []


def test_hostile_finals_are_clear_400s(server_factory: Callable[..., LiveServer], make_api: Callable[..., Api]) -> None:
    server = server_factory()
    alice, mallory = make_api(server), make_api(server)
    mine = sent_part(alice, b"a" * 100)
    theirs = sent_part(mallory, b"m" * 100)
    unfinished = partial(alice, 100)
    assert patch(alice, unfinished, 0, b"a" * 50).status_code == 204
    whole = alice.request(
        "POST", "/tus/", headers={**TUS, "Upload-Length": "10", "Upload-Metadata": metadata(name="w.bin")}
    )
    not_partial = "/tus/" + whole.headers["Location"].rsplit("/tus/", 1)[1]
    cases = {
        "foreign": [mine, theirs],
        "incomplete": [mine, unfinished],
        "not partial": [mine, not_partial],
        "twice": [mine, mine],
        "not an upload": [mine, "/files/x"],
        "bad id": [mine, "/tus/../../etc"],
        "too many": [mine] + [f"/tus/{i:032x}" for i in range(MAX_PARTS)],
    }
    for case, paths in cases.items():
        answer = final(alice, paths)
        assert answer.status_code == 400, (case, answer.text)
        assert answer.json()["error"], case
    for headers, case in (
        ({"Upload-Concat": "final;" + "x" * 20000}, "header too long"),
        ({"Upload-Concat": "final;"}, "no parts"),
        ({"Upload-Concat": "sideways"}, "unknown kind"),
        ({"Upload-Concat": "final;" + mine, "Upload-Length": "100"}, "final with a length"),
        ({"Upload-Concat": "partial", "Upload-Length": "5", "Upload-Md5": md5_hex(b"abcde")}, "md5 on a partial"),
    ):
        answer = alice.request("POST", "/tus/", headers={**TUS, "Upload-Metadata": metadata(name="n.bin"), **headers})
        assert answer.status_code == 400, (case, answer.text)
    # Nothing was consumed: the good part still joins.
    assert final(alice, [mine], name="one.bin").status_code == 201
    assert alice.get("one.bin").content == b"a" * 100


def test_the_local_join_moves_no_bytes(server_factory: Callable[..., LiveServer], make_api: Callable[..., Api]) -> None:
    """On local disk the part files become the blob's segments (same inodes): no second write."""
    server = server_factory()
    api = make_api(server)
    paths = [sent_part(api, bytes([i]) * 300_000) for i in range(3)]
    inodes = [os.stat(staging(server) / p.rsplit("/", 1)[1]).st_ino for p in paths]
    assert final(api, paths).status_code == 201
    blobs = [d for d in (server.data_dir / "blobs").glob("??/*") if d.is_dir()]
    assert len(blobs) == 1
    assert [s.stat().st_ino for s in sorted(blobs[0].iterdir())] == inodes
    assert api.request("DELETE", "/files/joined.bin").status_code == 204
    assert not blobs[0].exists()


def test_the_final_upload_verifies_a_claimed_sha256(
    backend: tuple[LiveServer, str], make_api: Callable[[LiveServer], Api]
) -> None:
    """``sha256`` in the final's metadata is checked over the joined parts like ``md5``: a wrong one is
    a 409 naming sha256 and uses the parts up; the right one stores the file with that SHA-256."""
    server, _ = backend
    api = make_api(server)
    pieces = [b"first-" * 1000, b"second-" * 1000]
    data = b"".join(pieces)
    refused = final(api, [sent_part(api, p) for p in pieces], name="s.bin", sha256=hashlib.sha256(b"other").hexdigest())
    assert refused.status_code == 409, refused.text
    assert refused.json()["algorithm"] == "sha256"
    assert api.names() == []
    stored = final(api, [sent_part(api, p) for p in pieces], name="s.bin", sha256=hashlib.sha256(data).hexdigest())
    assert stored.status_code == 201, stored.text
    assert api.request("GET", "/info/s.bin").json()["sha256"] == hashlib.sha256(data).hexdigest()
