"""Upload by content (``POST /files/{name}``): links without bytes, per user, reference-counted blobs.

Each behaviour runs on local disk with SQLite, on local disk with PostgreSQL
(``TEST_DATABASE_URL``) and on S3 (moto), counting the blobs the store holds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.api import Api, md5_hex
from tests.support.live_server import LiveServer
from tests.support.racing import committed_blobs
from tests.support.retention import expire, server_command, set_quota
from tests.support.s3 import Bucket
from tests.support.tokens import mint
from tests.support.tus import final, sent_part

DATA = bytes(range(256)) * 4096 + b"content"  # 1 MiB and a bit, the same every run


@dataclass
class Backend:
    """A server, two of its users, and a way to count the blobs its store holds."""

    server: LiveServer
    alice: Api
    bob: Api
    blobs: Callable[[], int]


@pytest.fixture(params=["sqlite", "postgresql", "s3"])
def backend(request: pytest.FixtureRequest, server_factory: Callable[..., LiveServer]) -> Backend:
    """The same server behaviour over each catalog and store."""
    if request.param == "s3":
        pytest.importorskip("boto3")
        pytest.importorskip("moto.server")
        bucket: Bucket = request.getfixturevalue("bucket")
        server = request.getfixturevalue("s3_server_factory")(bucket)

        def count() -> int:
            return len(bucket.blob_keys())
    else:
        args = ("--db-url", request.getfixturevalue("pg_database")) if request.param == "postgresql" else ()
        server = server_factory(*args)

        def count() -> int:
            return len(committed_blobs(server.data_dir))

    return Backend(server, Api(server.url, server.add_user("alice")), Api(server.url, server.add_user("bob")), count)


def offer(api: Api, name: str, data: bytes = DATA, headers: dict[str, str] | None = None, **changes: Any) -> Any:
    """``POST /files/{name}`` with the offer for ``data`` (fields replaced by ``changes``)."""
    body = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "md5": md5_hex(data), **changes}
    body = {k: v for k, v in body.items() if v is not None}
    sent = {"Content-Type": "application/json", **(headers or {})}
    return api.request("POST", f"/files/{name}", data=json.dumps(body), headers=sent)


def test_offer_links_the_name_to_content_already_held(backend: Backend) -> None:
    """A matching offer stores the new name with no body: same digests, same bytes, one blob."""
    first = backend.alice.upload("build/1/app.bin", DATA)
    linked = offer(backend.alice, "build/2/app.bin")
    assert linked.status_code == 200, linked.text
    info = linked.json()
    assert (info["name"], info["size"], info["md5"]) == ("build/2/app.bin", len(DATA), first["md5"])
    assert info["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert backend.alice.get("build/2/app.bin").content == DATA
    assert backend.alice.names() == ["build/1/app.bin", "build/2/app.bin"]
    assert backend.blobs() == 1
    assert offer(backend.alice, "build/3/app.bin", md5=None).status_code == 200  # sha256 and size suffice


@pytest.mark.parametrize(
    "changes", [{"size": len(DATA) - 1}, {"md5": "0" * 32}, {"sha256": "0" * 64}], ids=["size", "md5", "sha256"]
)
def test_offer_of_other_content_is_404_and_changes_nothing(backend: Backend, changes: dict[str, Any]) -> None:
    """Any digest or the size differing: 404 "no such content", the name is not created."""
    backend.alice.upload("a.bin", DATA)
    refused = offer(backend.alice, "b.bin", **changes)
    assert refused.status_code == 404
    assert refused.json() == {"error": "no such content", "name": "b.bin"}
    assert backend.alice.names() == ["a.bin"]


def test_dedup_never_crosses_users(backend: Backend) -> None:
    """Bob offering content only Alice holds gets the same 404 as for content nobody holds."""
    backend.alice.upload("a.bin", DATA)
    refused = offer(backend.bob, "a.bin")
    assert refused.status_code == 404 and refused.json() == {"error": "no such content", "name": "a.bin"}
    assert backend.bob.names() == []
    backend.bob.upload("mine.bin", DATA)  # Bob's own copy is a blob of his own
    assert backend.blobs() == 2


def test_shared_blob_lives_until_its_last_name_goes(backend: Backend) -> None:
    """Deleting or replacing one of two names keeps the blob; deleting the last name removes it."""
    backend.alice.upload("one.bin", DATA)
    assert offer(backend.alice, "two.bin").status_code == 200
    assert offer(backend.alice, "three.bin").status_code == 200
    assert backend.alice.request("DELETE", "/files/one.bin").status_code == 204
    assert backend.blobs() == 1
    backend.alice.upload("two.bin", b"replaced")  # a new blob for two.bin; three.bin still holds the old one
    assert backend.blobs() == 2
    assert backend.alice.get("three.bin").content == DATA
    assert offer(backend.alice, "four.bin").status_code == 200  # still offered while a name holds it
    for name in ("three.bin", "four.bin"):
        assert backend.alice.request("DELETE", f"/files/{name}").status_code == 204
    assert backend.blobs() == 1  # only two.bin's
    assert offer(backend.alice, "five.bin").status_code == 404  # gone with its last name


def test_linking_a_name_to_its_own_content_keeps_the_blob(backend: Backend) -> None:
    """Offering a name the content it already has changes nothing but its times."""
    backend.alice.upload("same.bin", DATA)
    assert offer(backend.alice, "same.bin").status_code == 200
    assert backend.alice.get("same.bin").content == DATA
    assert backend.blobs() == 1


def test_offer_honours_preconditions(api: Api) -> None:
    """``If-None-Match: *`` refuses an existing name (412), as for an upload."""
    api.upload("a.bin", DATA)
    api.upload("b.bin", b"other")
    body = json.dumps({"size": len(DATA), "sha256": hashlib.sha256(DATA).hexdigest()})
    refused = api.request("POST", "/files/b.bin", data=body, headers={"If-None-Match": "*"})
    assert refused.status_code == 412, refused.text
    assert api.get("b.bin").content == b"other"
    matched = api.request("POST", "/files/b.bin", data=body, headers={"If-Match": f'"{md5_hex(b"other")}"'})
    assert matched.status_code == 200 and api.get("b.bin").content == DATA


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1]",
        b'{"sha256": "' + b"0" * 64 + b'"}',
        b'{"size": -1, "sha256": "' + b"0" * 64 + b'"}',
        b'{"size": true, "sha256": "' + b"0" * 64 + b'"}',
        b'{"size": 1}',
        b'{"size": 1, "sha256": "xyz"}',
        b'{"size": 1, "sha256": "' + b"0" * 64 + b'", "md5": 5}',
        b" " * 5000,
    ],
    ids=["not-json", "not-object", "no-size", "negative", "bool", "no-sha256", "bad-sha256", "bad-md5", "too-long"],
)
def test_malformed_offer_is_400(api: Api, body: bytes) -> None:
    """An offer that is not the documented JSON object is a clear 400 (never a 500)."""
    response = api.request("POST", "/files/x.bin", data=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]


def test_offer_needs_a_token(live_server: LiveServer) -> None:
    """No token, no lookup: 401 before the body is looked at."""
    response = Api(live_server.url, "nope").request("POST", "/files/x.bin", data=b"{}")
    assert response.status_code == 401


LOCAL_CATALOGS = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@LOCAL_CATALOGS
def test_the_expiry_sweep_keeps_a_blob_another_name_holds(backend: Backend) -> None:
    """An expired name is swept, but the content a live name links to stays, until that one goes too."""
    server, alice = backend.server, backend.alice
    assert alice.put("ci/1/app.bin", DATA, **{"Updl-Expires-In": "60"}).status_code == 200
    assert offer(alice, "ci/2/app.bin").status_code == 200
    expire(server, "ci/1/app.bin")
    swept = server_command(server, "sweep")
    assert (swept.returncode, swept.stdout.strip()) == (0, "1"), swept.stderr
    assert backend.blobs() == 1
    assert alice.get("ci/2/app.bin").content == DATA
    expire(server, "ci/2/app.bin")
    assert server_command(server, "sweep").stdout.strip() == "1"
    assert backend.blobs() == 0


@LOCAL_CATALOGS
def test_deleting_a_user_frees_each_shared_blob_once_and_keeps_other_users_copies(backend: Backend) -> None:
    """``updl-server user delete``: Alice's names and her one shared blob go; Bob's own copy stays."""
    backend.alice.upload("a.bin", DATA)
    assert offer(backend.alice, "b.bin").status_code == 200
    backend.bob.upload("mine.bin", DATA)
    assert backend.blobs() == 2
    deleted = server_command(backend.server, "user", "delete", "alice", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert "2 file(s)" in deleted.stderr
    assert backend.blobs() == 1
    assert backend.bob.get("mine.bin").content == DATA


def test_a_concatenated_file_linked_under_a_second_name_outlives_the_first(backend: Backend) -> None:
    """tus parts joined into one (composite) blob, linked by content, keep their bytes for the second
    name when the first is deleted; the blob goes with the last name."""
    alice = backend.alice
    half = len(DATA) // 2
    paths = [sent_part(alice, DATA[:half]), sent_part(alice, DATA[half:])]
    joined = final(alice, paths, name="joined.bin", md5=md5_hex(DATA))
    assert joined.status_code == 201, joined.text
    assert alice.request("GET", "/info/joined.bin").json()["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert offer(alice, "copy.bin").status_code == 200
    assert alice.request("DELETE", "/files/joined.bin").status_code == 204
    assert alice.get("copy.bin").content == DATA
    assert alice.request("DELETE", "/files/copy.bin").status_code == 204
    assert backend.blobs() == 0


def test_a_linked_name_is_a_version_like_any_upload(backend: Backend) -> None:
    """The link records the offer's attributes and expiry, and counts against the quota (507 past it)."""
    backend.alice.upload("a.bin", DATA)
    headers = {"Updl-Mode": "0755", "Updl-Mtime": "2026-01-02T03:04:05Z", "Updl-Expires-In": "3600"}
    linked = offer(backend.alice, "tools/run.bin", headers=headers)
    assert linked.status_code == 200, linked.text
    info = linked.json()
    assert (info["mode"], info["mtime"][:19]) == ("0755", "2026-01-02T03:04:05")
    assert info["expires"] is not None
    got = backend.alice.get("tools/run.bin")
    assert got.headers["Updl-Mode"] == "0755"
    set_quota(backend.server, "alice", "--bytes", str(2 * len(DATA) + 10))
    refused = offer(backend.alice, "third.bin")
    assert refused.status_code == 507, refused.text
    assert refused.json()["error"].startswith("quota exceeded")
    assert backend.alice.names() == ["a.bin", "tools/run.bin"]


@LOCAL_CATALOGS
def test_a_prefix_token_links_only_content_named_below_its_prefix(backend: Backend) -> None:
    """A token limited to ``ci/`` cannot find (or link, then read) content the user holds only
    outside ``ci/``: the same 404 as for content nobody holds. Content named inside it is found."""
    backend.alice.upload("private/keys.bin", DATA)
    ci = Api(backend.server.url, mint(backend.server, "alice", scopes=("read", "write"), prefix="ci/"))
    refused = offer(ci, "ci/copy.bin")
    assert refused.status_code == 404 and refused.json() == {"error": "no such content", "name": "ci/copy.bin"}
    assert ci.request("GET", "/files/ci/copy.bin").status_code == 404
    backend.alice.upload("ci/build/1.bin", DATA)
    assert offer(ci, "ci/build/2.bin").status_code == 200


@LOCAL_CATALOGS
def test_expired_content_is_not_linked(backend: Backend) -> None:
    """A name past its expiry is gone for every reader at once, sweep or not: its content is no
    longer offered either."""
    assert backend.alice.put("old.bin", DATA, **{"Updl-Expires-In": "60"}).status_code == 200
    expire(backend.server, "old.bin")
    refused = offer(backend.alice, "new.bin")
    assert refused.status_code == 404, refused.text
    assert backend.alice.names() == []
