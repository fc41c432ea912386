"""The catalog on PostgreSQL: the metadata and concurrency behaviour again, each test on a new database.

Needs ``TEST_DATABASE_URL`` (``eval "$(bash scripts/start-postgres.sh)"``); see ``pgsupport``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.api import Api, md5_hex
from tests.support.live_server import LiveServer, clean_env, console_script
from tests.support.postgres import pg_rows
from tests.support.racing import all_at_once, committed_blobs, race_puts

ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def pg_server(pg_database: str, server_factory: ServerFactory) -> LiveServer:
    """A server whose catalog is a fresh PostgreSQL database."""
    return server_factory("--db-url", pg_database)


def test_round_trip_lives_in_postgres(pg_server: LiveServer, pg_database: str) -> None:
    """put (PUT and POST), list, info, get, delete: all answered from PostgreSQL, no SQLite file."""
    api = Api(pg_server.url, pg_server.add_user("alice"))
    first = api.upload("docs/a.txt", b"alpha")
    data = os.urandom(200_000)
    posted = api.request("POST", "/upload", files={"file": ("b.bin", data)}, data={"md5": md5_hex(data)})
    assert posted.status_code == 200, posted.text
    assert api.names() == ["b.bin", "docs/a.txt"]
    assert api.request("GET", "/info/docs/a.txt").json() == first
    got = api.get("b.bin")
    assert got.content == data and got.headers["ETag"] == f'"{md5_hex(data)}"'
    assert sorted(pg_rows(pg_database, "SELECT name, md5 FROM files")) == [
        ("b.bin", md5_hex(data)),
        ("docs/a.txt", md5_hex(b"alpha")),
    ]
    assert api.request("DELETE", "/files/b.bin").status_code == 204
    assert api.get("b.bin").status_code == 404
    assert api.request("DELETE", "/files/b.bin").status_code == 404
    assert api.names() == ["docs/a.txt"]
    assert len(committed_blobs(pg_server.data_dir)) == 1
    assert not (pg_server.data_dir / "updl.db").exists()


def test_users_are_isolated(pg_server: LiveServer) -> None:
    """Two users, one name: each sees only their own file; the other's is a 404."""
    alice = Api(pg_server.url, pg_server.add_user("alice"))
    bob = Api(pg_server.url, pg_server.add_user("bob"))
    alice.upload("same.txt", b"alice's")
    alice.upload("only-alice.txt", b"private")
    bob.upload("same.txt", b"bob's")
    assert alice.get("same.txt").content == b"alice's"
    assert bob.get("same.txt").content == b"bob's"
    assert bob.names() == ["same.txt"]
    assert bob.get("only-alice.txt").status_code == 404
    assert bob.request("GET", "/info/only-alice.txt").status_code == 404
    assert bob.request("DELETE", "/files/only-alice.txt").status_code == 404
    assert alice.get("only-alice.txt").content == b"private"


def test_replace_swaps_content_and_deletes_the_old_blob(pg_server: LiveServer) -> None:
    """A replacement serves the new bytes, and only one blob remains."""
    api = Api(pg_server.url, pg_server.add_user("carol"))
    api.upload("r.bin", b"version one")
    second = api.upload("r.bin", b"version two, longer")
    assert api.request("GET", "/info/r.bin").json() == second
    assert api.get("r.bin").content == b"version two, longer"
    assert api.names() == ["r.bin"]
    assert len(committed_blobs(pg_server.data_dir)) == 1


def test_concurrent_uploads_of_one_name(pg_server: LiveServer) -> None:
    """Four writers of one name, first as a new name, then as replacements: one whole file wins
    and exactly one blob is left on disk (each replaced blob deleted once, none leaked)."""
    api = Api(pg_server.url, pg_server.add_user("dave"))
    for round_ in range(3):
        contents = [os.urandom(400_000 + i) for i in range(4)]
        responses = race_puts([api] * 4, "hot.bin", contents)
        assert [r.status_code for r in responses] == [200] * 4, round_
        got = api.get("hot.bin")
        assert md5_hex(got.content) in {md5_hex(c) for c in contents}
        assert got.headers["ETag"] == f'"{md5_hex(got.content)}"'
        assert api.request("GET", "/info/hot.bin").json()["md5"] == md5_hex(got.content)
        blobs = committed_blobs(pg_server.data_dir)
        assert len(blobs) == 1, (round_, blobs)
        assert blobs[0].read_bytes() == got.content
    assert api.names() == ["hot.bin"]


def test_pagination(pg_server: LiveServer) -> None:
    """Pages of ``limit`` in name order with a cursor; prefix narrows the listing."""
    api = Api(pg_server.url, pg_server.add_user("erin"))
    names = [f"logs/{i:02d}.txt" for i in range(7)] + ["other.txt", "logsX"]
    for name in names:
        api.upload(name, name.encode())
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"prefix": "logs/", "limit": "3", **({"cursor": cursor} if cursor else {})}
        page = api.request("GET", "/files", params=params).json()
        seen += [f["name"] for f in page["files"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(n for n in names if n.startswith("logs/"))
    assert api.names() == sorted(names)


def _server_command(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [console_script("updl-server"), *args, "--data-dir", str(server.data_dir), *server.db_args()],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )


def test_add_user_and_new_token(pg_server: LiveServer) -> None:
    """add-user, a refused second add-user, new-token (both tokens work), unknown user refused."""
    first = pg_server.add_user("frank")
    again = _server_command(pg_server, "add-user", "frank")
    assert again.returncode == 1 and "updl-server new-token frank" in again.stderr
    second = _server_command(pg_server, "new-token", "frank")
    assert second.returncode == 0, second.stderr
    token = second.stdout.strip()
    assert token != first
    Api(pg_server.url, first).upload("mine.txt", b"1")
    assert Api(pg_server.url, token).names() == ["mine.txt"]
    assert _server_command(pg_server, "new-token", "nobody").returncode == 1


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh catalog database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    url: str = request.getfixturevalue("pg_database")
    return url


def test_put_file_hands_out_each_replaced_location_once(catalog_url: str) -> None:
    """Many threads replacing one name: every location but the last is returned as replaced
    exactly once (so deleted once), and the last is the one the row points at."""
    from updl_server.catalog import Catalog

    catalog = Catalog(catalog_url)
    catalog.create_tables()
    try:
        owner = catalog.add_user("racer")
        writers, rounds = 6, 15

        def writer(index: int) -> Callable[[], list[tuple[str, str | None]]]:
            def run() -> list[tuple[str, str | None]]:
                done = []
                for n in range(rounds):
                    location = f"{index:02x}{n:030x}"
                    _, replaced = catalog.put_file(owner, "x", 1, "0" * 32, location)
                    done.append((location, replaced))
                return done

            return run

        results = all_at_once([writer(i) for i in range(writers)])
        pairs = [pair for result in results for pair in result]  # type: ignore[attr-defined]
        written = {location for location, _ in pairs}
        replaced = [old for _, old in pairs if old is not None]
        final = catalog.file(owner, "x")
        assert final is not None
        assert len(written) == writers * rounds
        assert sorted(replaced) == sorted(written - {final.location})
        assert sum(old is None for _, old in pairs) == 1  # only the very first write was new
    finally:
        catalog.close()


def test_concurrent_create_tables(pg_database: str) -> None:
    """Several processes creating the schema at once (workers starting together) all succeed."""
    from updl_server.catalog import Catalog

    catalogs = [Catalog(pg_database) for _ in range(4)]
    try:
        all_at_once([catalog.create_tables for catalog in catalogs])
        assert catalogs[0].add_user("after") > 0
    finally:
        for catalog in catalogs:
            catalog.close()


def test_an_older_catalog_gains_the_new_columns(catalog_url: str) -> None:
    """A database made by an older server (a column missing) is upgraded at start: the column is
    added, the old rows stay readable with it empty, and new writes use it."""
    from sqlalchemy import create_engine, inspect, text

    from updl_server.catalog import Catalog

    catalog = Catalog(catalog_url)
    catalog.create_tables()
    owner = catalog.add_user("old")
    catalog.put_file(owner, "kept.txt", 4, "0" * 32, "a" * 32)
    catalog.close()
    engine = create_engine(catalog_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE files DROP COLUMN last_accessed"))
    engine.dispose()

    upgraded = Catalog(catalog_url)
    try:
        upgraded.create_tables()
        upgraded.create_tables()  # idempotent: nothing left to add
        columns = {c["name"] for c in inspect(upgraded.engine).get_columns("files")}
        assert "last_accessed" in columns
        record = upgraded.file(owner, "kept.txt")
        assert record is not None and record.last_accessed is None and record.size == 4
        upgraded.record_access(record.id, record.created)
        again = upgraded.file(owner, "kept.txt")
        assert again is not None and again.last_accessed == record.created
    finally:
        upgraded.close()
