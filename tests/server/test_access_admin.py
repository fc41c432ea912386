"""``updl-server token ...`` and ``user ...`` beside running servers: every process obeys at once.

Revocation, expiry and disabling are read from the database on every request;
two server processes on one database (and ``--workers 2``) must all refuse a
token on the very next request after it is revoked or expires.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.live_server import LiveServer, clean_env, console_script
from tests.support.racing import committed_blobs
from tests.support.tokens import mint, set_expiry, token_id
from updl_server.catalog import utcnow


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh catalog database of each kind, outside any data dir."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    url: str = request.getfixturevalue("pg_database")
    return url


@pytest.fixture
def servers(tmp_path: Path, db_url: str) -> Iterator[list[LiveServer]]:
    """Two ``updl-server run`` processes on one data dir and one database."""
    started: list[LiveServer] = []
    try:
        for _ in range(2):
            server = LiveServer(data_dir=tmp_path / "shared-data", args=("--db-url", db_url))
            server.start()
            started.append(server)
        yield started
    finally:
        for server in started:
            server.stop()


def admin(server: LiveServer, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``updl-server ARGS`` on the server's data dir and database."""
    return subprocess.run(
        [console_script("updl-server"), *args, "--data-dir", str(server.data_dir), *server.db_args()],
        capture_output=True,
        text=True,
        input=stdin,
        env=clean_env(),
        timeout=60,
    )


def _statuses(apis: list[Api]) -> list[int]:
    return [api.request("GET", "/whoami").status_code for api in apis]


def test_revoked_and_expired_tokens_fail_on_every_process(servers: list[LiveServer]) -> None:
    one = servers[0]
    one.add_user("alice")
    revoked, expiring = mint(one, "alice"), mint(one, "alice", expires=utcnow() + timedelta(days=1))
    for text in (revoked, expiring):
        clients = [Api(s.url, text) for s in servers]
        assert _statuses(clients) == [200, 200]  # each process has seen (and could have cached) it
    result = admin(one, "token", "revoke", token_id(revoked))
    assert result.returncode == 0, result.stderr
    assert _statuses([Api(s.url, revoked) for s in servers]) == [401, 401]
    set_expiry(one, expiring, utcnow() - timedelta(seconds=1))  # as if a day went by
    replies = [Api(s.url, expiring).request("GET", "/files") for s in servers]
    assert [(r.status_code, "expired" in r.json()["error"]) for r in replies] == [(401, True), (401, True)]


def test_revocation_reaches_both_workers_of_one_server(tmp_path: Path) -> None:
    """``--workers 2``: the kernel picks the worker, so many fresh connections all get 401."""
    server = LiveServer(data_dir=tmp_path / "data", args=("--workers", "2"))
    server.start()
    try:
        server.add_user("bob")
        text = mint(server, "bob")
        assert all(status == 200 for status in _statuses([Api(server.url, text) for _ in range(8)]))
        assert admin(server, "token", "revoke", token_id(text)).returncode == 0
        assert _statuses([Api(server.url, text) for _ in range(8)]) == [401] * 8
    finally:
        server.stop()


def test_token_commands(live_server: LiveServer) -> None:
    live_server.add_user("carol-admin")
    made = admin(
        live_server, "token", "create", "carol-admin", "--scopes", "read", "--prefix", "ci/", "--expires", "30d"
    )
    assert made.returncode == 0, made.stderr
    text = made.stdout.strip()
    assert made.stdout == text + "\n" and text.startswith("updl_")  # the secret alone on stdout
    api = Api(live_server.url, text)
    me = api.request("GET", "/whoami").json()
    assert me["scopes"] == ["read"] and me["prefix"] == "ci/" and me["expires"] is not None
    listed = admin(live_server, "token", "list", "carol-admin")
    assert listed.returncode == 0
    assert token_id(text) in listed.stdout and "ci/" in listed.stdout and "read" in listed.stdout
    assert text.split("_", 2)[2] not in listed.stdout  # never the secret
    assert admin(live_server, "token", "revoke", token_id(text)).returncode == 0
    assert api.request("GET", "/whoami").status_code == 401
    assert admin(live_server, "token", "revoke", "0123456789abcdef").returncode == 1
    bad = admin(live_server, "token", "create", "carol-admin", "--scopes", "admin")
    assert bad.returncode == 2 and bad.stdout == ""


def test_user_commands(tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data")
    server.start()
    try:
        api = Api(server.url, server.add_user("dave"))
        keep = Api(server.url, server.add_user("erin"))
        api.upload("a.bin", b"a" * 1000)
        keep.upload("b.bin", b"b")
        assert len(committed_blobs(server.data_dir)) == 2
        listed = admin(server, "user", "list")
        assert listed.returncode == 0 and "dave" in listed.stdout and "1000" in listed.stdout
        assert admin(server, "user", "disable", "dave").returncode == 0
        reply = api.request("GET", "/files")
        assert reply.status_code == 401 and "disabled" in reply.json()["error"]
        assert admin(server, "user", "enable", "dave").returncode == 0
        assert api.request("GET", "/files").status_code == 200
        refused = admin(server, "user", "delete", "dave", stdin="n\n")
        assert refused.returncode == 1 and api.names() == ["a.bin"]  # asked, answered no
        deleted = admin(server, "user", "delete", "dave", "--yes")
        assert deleted.returncode == 0, deleted.stderr
        assert api.request("GET", "/files").status_code == 401  # its tokens are gone
        assert len(committed_blobs(server.data_dir)) == 1  # its blobs too; erin's stays
        assert keep.names() == ["b.bin"]
        assert "dave" not in admin(server, "user", "list").stdout
        assert admin(server, "user", "delete", "dave", "--yes").returncode == 1
    finally:
        server.stop()


def test_tokens_of_an_older_catalog_keep_full_power(db_url: str) -> None:
    """A catalog from before scopes (tokens and users without the new columns) is upgraded at
    start, and its tokens keep every scope, no prefix and no expiry."""
    import asyncio

    from sqlalchemy import create_engine, text

    from updl_server.auth import authenticate, mint_token
    from updl_server.catalog import Catalog

    engine = create_engine(db_url)
    with engine.begin() as conn:  # the schema as the previous release made it
        conn.execute(
            text(
                "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL UNIQUE, "
                "created TIMESTAMP NOT NULL, last_login TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "CREATE TABLE tokens (id VARCHAR(16) PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) "
                "ON DELETE CASCADE, hash VARCHAR(64) NOT NULL, created TIMESTAMP NOT NULL)"
            )
        )
        token = mint_token()
        conn.execute(text("INSERT INTO users (id, name, created) VALUES (1, 'old', :now)"), {"now": utcnow()})
        conn.execute(
            text("INSERT INTO tokens (id, user_id, hash, created) VALUES (:id, 1, :hash, :now)"),
            {"id": token.token_id, "hash": token.secret_hash, "now": utcnow()},
        )
    engine.dispose()
    catalog = Catalog(db_url)
    try:
        catalog.create_tables()
        grant = asyncio.run(authenticate(catalog, f"Bearer {token.text}"))
        assert (grant.user, grant.scopes, grant.prefix, grant.expires) == (
            "old",
            ("read", "write", "delete"),
            None,
            None,
        )
    finally:
        catalog.close()
