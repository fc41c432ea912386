"""Per-user quotas: refused before the body where the size is known, at commit otherwise; a refusal stores nothing."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support.api import Api, md5_hex, raw_request, read_response, temp_files
from tests.support.live_server import LiveServer
from tests.support.racing import all_at_once, committed_blobs
from tests.support.retention import server_command, set_quota
from tests.support.tus import STREAM, TUS, create, created, staging

ServerFactory = Callable[..., LiveServer]


def _user(server: LiveServer, *limits: str) -> Api:
    name = f"quota-{uuid.uuid4().hex[:10]}"
    api = Api(server.url, server.add_user(name))
    if limits:
        set_quota(server, name, *limits)
    return api


def _stored_nothing(server: LiveServer, api: Api, names: list[str], blobs: int) -> None:
    assert api.names() == names
    assert len(committed_blobs(server.data_dir)) == blobs
    assert temp_files(server.data_dir) == []
    assert [p for p in staging(server).rglob("*") if p.is_file()] == [] if staging(server).exists() else True


def _refusal(response_status: int, body: dict[str, object]) -> None:
    assert response_status == 507, body
    assert isinstance(body["error"], str) and "quota" in body["error"]
    assert {"quota_bytes", "used_bytes", "quota_files", "used_files", "size"} <= set(body)


@pytest.fixture
def server(server_factory: ServerFactory) -> Iterator[LiveServer]:
    """A server of its own, so blob counts are this test's."""
    yield server_factory()


def test_put_over_quota_is_refused_before_its_body(server: LiveServer) -> None:
    """A PUT whose Content-Length passes the quota gets 507 without sending a byte of its body."""
    api = _user(server, "--bytes", "1000")
    api.upload("a", b"x" * 600)
    sock = raw_request(api, "PUT /files/b HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 500\r\n")
    with sock:  # the 507 comes instead of 100 Continue: no byte of the body was asked for
        status, raw = read_response(sock)
    body = json.loads(raw)
    _refusal(status, body)
    assert body["quota_bytes"] == 1000 and body["used_bytes"] == 600 and body["size"] == 500
    _stored_nothing(server, api, ["a"], 1)


def test_replacing_counts_the_difference(server: LiveServer) -> None:
    """600 of 1000 used: replacing it with 900 fits, a new 200-byte file then does not."""
    api = _user(server, "--bytes", "1000")
    api.upload("a", b"x" * 600)
    assert api.put("a", b"y" * 900).status_code == 200
    refused = api.put("b", b"z" * 200)
    _refusal(refused.status_code, refused.json())
    _stored_nothing(server, api, ["a"], 1)


def test_file_count_quota(server: LiveServer) -> None:
    """``--files 2``: a third name is refused; replacing one of the two is not a new file."""
    api = _user(server, "--files", "2")
    api.upload("a", b"a")
    api.upload("b", b"b")
    refused = api.put("c", b"c")
    _refusal(refused.status_code, refused.json())
    assert refused.json()["used_files"] == 2 and refused.json()["quota_files"] == 2
    assert api.put("a", b"again").status_code == 200
    _stored_nothing(server, api, ["a", "b"], 2)


def test_chunked_put_is_refused_at_commit(server: LiveServer) -> None:
    """Without a Content-Length the body is received, then refused at commit; nothing stays."""
    api = _user(server, "--bytes", "100")
    refused = api.put("big", iter([b"x" * 80, b"y" * 80]))  # a generator: chunked
    _refusal(refused.status_code, refused.json())
    _stored_nothing(server, api, [], 0)


def test_multipart_over_quota(server: LiveServer) -> None:
    """POST /upload: refused (name first: when the name part arrives; after: at commit); nothing stored."""
    api = _user(server, "--bytes", "100")
    data = b"m" * 150
    first = api.post_parts([("name", b"m.bin"), ("file", data, "m.bin"), ("md5", md5_hex(data).encode())])
    _refusal(first.status_code, first.json())
    last = api.post_parts([("file", data, "m.bin"), ("md5", md5_hex(data).encode()), ("name", b"m.bin")])
    _refusal(last.status_code, last.json())
    fits = api.post_parts([("name", b"ok"), ("file", b"k" * 100, "ok"), ("md5", md5_hex(b"k" * 100).encode())])
    assert fits.status_code == 200, fits.text
    _stored_nothing(server, api, ["ok"], 1)


def test_tus_creation_over_quota_stages_nothing(server: LiveServer) -> None:
    """tus: an Upload-Length past the quota is refused at creation (507, Tus-Resumable, no upload made)."""
    api = _user(server, "--bytes", "1000", "--files", "5")
    refused = create(api, 1001, "big.bin")
    _refusal(refused.status_code, refused.json())
    assert refused.headers["Tus-Resumable"] == "1.0.0" and "Location" not in refused.headers
    _stored_nothing(server, api, [], 0)


def test_tus_completion_is_checked_again(server: LiveServer) -> None:
    """An upload created within the quota, which another upload then fills, is refused when it completes."""
    api = _user(server, "--bytes", "1000")
    path = created(api, 600, "late.bin")
    api.upload("filler", b"f" * 500)
    done = api.request("PATCH", path, data=b"l" * 600, headers={**STREAM, "Upload-Offset": "0"})
    _refusal(done.status_code, done.json())
    assert api.request("HEAD", path, headers=TUS).status_code == 404  # the upload is gone
    _stored_nothing(server, api, ["filler"], 1)


def test_usage_reports_the_quota(server: LiveServer) -> None:
    api = _user(server, "--bytes", "10K", "--files", "3")
    api.upload("d/a", b"a" * 100)
    api.upload("b", b"b" * 20)
    usage = api.request("GET", "/usage", params={"prefix": "d/"}).json()
    assert usage == {
        "prefix": "d/",
        "files": 1,
        "bytes": 100,
        "quota_bytes": 10_000,
        "used_bytes": 120,
        "quota_files": 3,
        "used_files": 2,
        "retention_seconds": None,
    }


def test_quota_command_shows_and_clears(server: LiveServer) -> None:
    name = f"quota-{uuid.uuid4().hex[:10]}"
    api = Api(server.url, server.add_user(name))
    api.upload("a", b"a" * 10)
    shown = set_quota(server, name)
    assert "bytes:     10 of unlimited" in shown and "files:     1 of unlimited" in shown
    assert "bytes:     10 of 1000000000" in set_quota(server, name, "--bytes", "1G")
    assert "bytes:     10 of unlimited" in set_quota(server, name, "--bytes", "none")
    missing = server_command(server, "quota", "nobody")
    assert missing.returncode == 1 and "no user 'nobody'" in missing.stderr
    bad = server_command(server, "quota", name, "--bytes", "lots")
    assert bad.returncode == 2


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_server(request: pytest.FixtureRequest, server_factory: ServerFactory) -> LiveServer:
    """A server on SQLite, and one on a fresh PostgreSQL database (skipped without TEST_DATABASE_URL)."""
    if request.param == "sqlite":
        return server_factory()
    return server_factory("--db-url", request.getfixturevalue("pg_database"))


def test_concurrent_uploads_cannot_overshoot(any_db_server: LiveServer) -> None:
    """Eight 300-byte uploads of different names race under a 1000-byte quota: exactly three are stored.

    Every body is half sent before any ends, so all pass the early check and their commits race;
    the commit locks the user's limits row, so each sees the others' commits.
    """
    server = any_db_server
    api = _user(server, "--bytes", "1000")
    half_sent = threading.Barrier(8, timeout=60)

    def body(data: bytes) -> Iterator[bytes]:
        yield data[:150]
        half_sent.wait()
        yield data[150:]

    def job(index: int) -> Callable[[], int]:
        own = Api(server.url, api.token)  # a session per thread
        return lambda: own.put(f"race-{index}", body(bytes([65 + index]) * 300)).status_code

    statuses = all_at_once([job(i) for i in range(8)])
    assert sorted(statuses) == [200] * 3 + [507] * 5  # type: ignore[type-var]
    usage = api.request("GET", "/usage").json()
    assert usage["used_bytes"] == 900 and usage["used_files"] == 3
    _stored_nothing(server, api, sorted(api.names()), 3)


def test_expiry_and_quota_on_postgresql(pg_database: str, server_factory: ServerFactory) -> None:
    """The expiry filter, the sweep and a quota refusal, answered from PostgreSQL."""
    from tests.support.retention import expire

    server = server_factory("--db-url", pg_database)
    api = _user(server, "--files", "2")
    api.put("gone", b"g", **{"Updl-Expires-In": "60"})
    api.upload("kept", b"k")
    refused = api.put("third", b"t")
    _refusal(refused.status_code, refused.json())
    expire(server, "gone")
    assert api.names() == ["kept"] and api.get("gone").status_code == 404
    assert api.put("third", b"t").status_code == 200  # the expired file no longer counts
    assert server_command(server, "sweep").stdout.strip() == "1"
    _stored_nothing(server, api, ["kept", "third"], 2)
