"""Mode and mtime on the server: stored per version, validated, returned (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.api import Api, md5_hex
from tests.support.live_server import LiveServer
from tests.support.postgres import pg_rows

ServerFactory = Callable[..., LiveServer]


def _round_trip(api: Api) -> None:
    posted = api.request(
        "POST",
        "/upload",
        files={
            "name": (None, "tool"),
            "mode": (None, "0755"),
            "mtime": (None, "2024-05-06T07:08:09.5+02:00"),
            "file": ("tool", b"#!"),
        },
        data={"md5": md5_hex(b"#!")},
    )
    assert posted.status_code == 200, posted.text
    assert (posted.json()["mode"], posted.json()["mtime"]) == ("0755", "2024-05-06T05:08:09.500000Z")
    head = api.request("HEAD", "/files/tool")
    assert (head.headers["Updl-Mode"], head.headers["Updl-Mtime"]) == ("0755", "2024-05-06T05:08:09.500000Z")
    replaced = api.upload("tool", b"plain")  # a new version without attributes has none
    assert (replaced["mode"], replaced["mtime"]) == (None, None)
    assert "Updl-Mode" not in api.request("HEAD", "/files/tool").headers


def test_attributes_on_sqlite(api: Api) -> None:
    _round_trip(api)


def test_attributes_on_postgres(pg_database: str, server_factory: ServerFactory) -> None:
    server = server_factory("--db-url", pg_database)
    api = Api(server.url, server.add_user("attrs"))
    _round_trip(api)
    api.request("PUT", "/files/x", data=b"x", headers={"Updl-Mode": "600", "Updl-Mtime": "1999-12-31T23:59:59Z"})
    assert pg_rows(pg_database, "SELECT mode, mtime FROM files WHERE name = 'x'")[0][0] == 0o600


@pytest.mark.parametrize(
    ("field", "value"),
    [("mode", "1777"), ("mode", "8"), ("mode", ""), ("mtime", "not a time"), ("mtime", "2024-13-01T00:00:00Z")],
)
def test_malformed_attributes_are_400_and_store_nothing(api: Api, field: str, value: str) -> None:
    parts = {"name": (None, "bad"), field: (None, value), "file": ("bad", b"data")}
    answer = api.request("POST", "/upload", files=parts, data={"md5": md5_hex(b"data")})
    assert answer.status_code == 400, answer.text
    assert field in answer.json()["error"]
    assert api.request("GET", "/info/bad").status_code == 404
