"""Folder-style listing: ``GET /files?delimiter=/`` rolls names up into common prefixes, paged."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.live_server import LiveServer

# Top-level files, folders of one and of many files (more than a page), nested folders, and
# names where '/' sorts between neighbours ('a-b', 'a.c', 'a0' around 'a/').
NAMES = (
    ["a-b", "a.c", "a0", "zz.txt", "top.txt"]
    + [f"a/{i:02d}" for i in range(23)]
    + ["a/deep/x", "a/deep/y/z", "b/one", "c/sub/1", "c/sub/2", "c/two", "d/e/f/g"]
    + [f"f{i:02d}/x" for i in range(12)]
)


def expected(prefix: str, names: list[str] = NAMES) -> tuple[set[str], set[str]]:
    """Files and common prefixes below ``prefix`` with delimiter '/' (S3's rule)."""
    files: set[str] = set()
    prefixes: set[str] = set()
    for name in names:
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix) :]
        if "/" in rest:
            prefixes.add(prefix + rest[: rest.index("/") + 1])
        else:
            files.add(name)
    return files, prefixes


def walk(api: Api, **params: str) -> tuple[list[str], list[str], int]:
    """Every page of a delimiter listing: files, prefixes (each in page order), page count."""
    files: list[str] = []
    prefixes: list[str] = []
    cursor: str | None = None
    for pages in range(1, 200):
        query: dict[str, Any] = {"delimiter": "/", **params, **({"cursor": cursor} if cursor else {})}
        response = api.request("GET", "/files", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["files"]) + len(body["prefixes"]) <= int(params.get("limit", 1000))
        files += [f["name"] for f in body["files"]]
        prefixes += body["prefixes"]
        cursor = body["next_cursor"]
        if cursor is None:
            return files, prefixes, pages
    raise AssertionError("the listing never ended")


@pytest.fixture(params=["sqlite", "postgresql"])
def listing_api(request: pytest.FixtureRequest, server_factory: Callable[..., LiveServer]) -> Api:
    """A user with ``NAMES`` on a fresh server of each kind of catalog."""
    if request.param == "sqlite":
        server = server_factory()
    else:
        server = server_factory("--db-url", request.getfixturevalue("pg_database"))
    api = Api(server.url, server.add_user("lister"))
    for name in NAMES:
        api.upload(name, name.encode())
    return api


def test_each_file_and_prefix_once_across_pages(listing_api: Api) -> None:
    for prefix in ["", "a/", "c/", "c/sub/", "d/e/", "nothing/"]:
        want_files, want_prefixes = expected(prefix)
        for limit in ["1", "3", "7", "1000"]:
            files, prefixes, pages = walk(listing_api, prefix=prefix, limit=limit)
            assert sorted(files) == sorted(want_files), (prefix, limit)
            assert sorted(prefixes) == sorted(want_prefixes), (prefix, limit)  # duplicates would show
            total = len(want_files) + len(want_prefixes)
            # Full pages, however many names a prefix hides.
            assert pages == max(1, -(-total // int(limit))), (prefix, limit)


def test_root_listing_on_sqlite_is_in_name_order(api: Api) -> None:
    """Files and prefixes interleave in one order (byte order on SQLite), and file entries are FileInfo."""
    for name in NAMES:
        api.upload(name, name.encode())
    body = api.request("GET", "/files", params={"delimiter": "/", "limit": "1000"}).json()
    files, prefixes = expected("")
    assert body["prefixes"] == sorted(prefixes)
    assert [f["name"] for f in body["files"]] == sorted(files)
    assert body["files"][0] == api.request("GET", "/info/a-b").json()
    assert body["next_cursor"] is None
    first = api.request("GET", "/files", params={"delimiter": "/", "limit": "4"}).json()
    assert (first["prefixes"], [f["name"] for f in first["files"]]) == (["a/"], ["a-b", "a.c", "a0"])


def test_without_delimiter_the_answer_is_unchanged(api: Api) -> None:
    api.upload("x/y", b"1")
    body = api.request("GET", "/files").json()
    assert set(body) == {"files", "next_cursor"}
    assert [f["name"] for f in body["files"]] == ["x/y"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"delimiter": ""}, "delimiter"),
        ({"delimiter": "/" * 17}, "delimiter"),
        ({"delimiter": "\n"}, "delimiter"),
        ({"delimiter": "/", "limit": "0"}, "limit"),
        ({"delimiter": "/", "limit": "x"}, "limit"),
        ({"delimiter": "/", "cursor": "!!"}, None),
        ({"delimiter": "/", "cursor": base64.urlsafe_b64encode(b"n" * 1100).decode()}, "cursor"),
    ],
)
def test_bad_parameters_are_400_json(api: Api, params: dict[str, str], field: str | None) -> None:
    response = api.request("GET", "/files", params=params)
    assert response.status_code == 400
    body = response.json()
    assert isinstance(body["error"], str)
    if field is not None:
        assert body.get("field") == field


def test_usage_counts_files_and_bytes_below_a_prefix(api: Api, make_api, live_server: LiveServer) -> None:
    """``GET /usage``: one answer for the whole prefix, only the caller's files."""
    for name, size in [("u/a", 10), ("u/b/c", 2000), ("u2", 5), ("v", 7)]:
        api.upload(name, b"x" * size)
    make_api(live_server).upload("u/other-user", b"y" * 999)
    unlimited = {
        "quota_bytes": None,
        "quota_files": None,
        "used_files": 4,
        "used_bytes": 2022,
        "retention_seconds": None,
    }
    assert api.request("GET", "/usage", params={"prefix": "u/"}).json() == {
        "prefix": "u/",
        "files": 2,
        "bytes": 2010,
        **unlimited,
    }
    assert api.request("GET", "/usage", params={"prefix": "u"}).json()["files"] == 3
    assert api.request("GET", "/usage").json() == {"prefix": "", "files": 4, "bytes": 2022, **unlimited}
    assert api.request("GET", "/usage", params={"prefix": "none/"}).json() == {
        "prefix": "none/",
        "files": 0,
        "bytes": 0,
        **unlimited,
    }
