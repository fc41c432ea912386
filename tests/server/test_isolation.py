"""Users cannot see or touch each other's files; hostile names are refused and create nothing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.api import Api, md5_hex, tree, url_name

if TYPE_CHECKING:
    from tests.support.live_server import LiveServer


def test_users_are_isolated(live_server: LiveServer, api: Api) -> None:
    """Another user's file is invisible (404) and untouchable; equal names are separate files."""
    other = Api(live_server.url, live_server.add_user("intruder-" + api.token[5:13]))
    api.upload("shared/name.txt", b"alice's")

    assert other.names() == []
    assert other.request("GET", "/info/shared/name.txt").status_code == 404
    missing = other.get("shared/name.txt")
    assert missing.status_code == 404
    # Exactly like a file that does not exist at all.
    assert missing.json() == {"error": "no such file", "name": "shared/name.txt"}
    assert other.request("HEAD", "/files/shared/name.txt").status_code == 404
    assert other.request("DELETE", "/files/shared/name.txt").status_code == 404

    # The same name is simply the other user's own file.
    other.upload("shared/name.txt", b"bob's own")
    assert other.get("shared/name.txt").content == b"bob's own"
    assert api.get("shared/name.txt").content == b"alice's"
    assert other.request("DELETE", "/files/shared/name.txt").status_code == 204
    assert api.get("shared/name.txt").content == b"alice's"
    assert api.names() == ["shared/name.txt"]


HOSTILE = [
    "../x",
    "a/../../x",
    "/abs",
    "a//b",
    "a\\b",
    "a\x00b",
    "a\nb",
    "n" * 1025,
    ".",
    "a/./b",
    "..",
    "a/..",
    "trailing/",
    "\x7f",
]


def _not_db(path: Path) -> bool:
    """The catalog database may change (tokens, logins); nothing else may."""
    return path.name.startswith("updl.db")


def test_hostile_names_are_refused_and_create_nothing(live_server: LiveServer, api: Api) -> None:
    """Hostile names get 400 on every route and nothing appears on disk."""
    data = b"would-be escapee"
    watched = live_server.data_dir.parent  # the data dir and everything beside it
    before = tree(watched, skip=_not_db)

    for name in HOSTILE:
        attempts = {
            "PUT": api.put(name, data),
            "POST name": api.post_parts(
                [("name", name.encode()), ("md5", md5_hex(data).encode()), ("file", data, "ok.txt")]
            ),
            "POST name after file": api.post_parts(
                [("file", data, "ok.txt"), ("md5", md5_hex(data).encode()), ("name", name.encode())]
            ),
        }
        if "\n" not in name and "\x00" not in name:  # a header cannot carry those
            attempts["POST filename"] = api.post_parts(
                [("md5", md5_hex(data).encode()), ("file", data, name.replace("\\", "\\\\"))]
            )
        for how, response in attempts.items():
            assert response.status_code == 400, (name, how, response.text)
            assert response.json()["error"].startswith("invalid name: "), (name, how)
            assert response.json()["name"] == name, (name, how)
        for method in ("GET", "HEAD", "DELETE"):
            response = api.request(method, f"/files/{url_name(name)}")
            assert response.status_code == 400, (name, method)
        assert api.request("GET", f"/info/{url_name(name)}").status_code == 400, name

    assert api.names() == []
    assert tree(watched, skip=_not_db) == before


def test_empty_name_is_refused(api: Api) -> None:
    """An empty name (PUT /files/, or an empty multipart name) is a 400."""
    assert api.put("", b"x").status_code == 400
    response = api.post_parts([("name", b""), ("md5", md5_hex(b"x").encode()), ("file", b"x", "")])
    assert response.status_code == 400
    assert api.names() == []


@pytest.mark.parametrize("name", ["..a", "a..b/c", "sp ace/ünï/名前.txt", "#hash?q=1&x", "%41"])
def test_unusual_but_valid_names_round_trip(api: Api, name: str) -> None:
    """Odd but valid names survive URL encoding both ways."""
    info = api.upload(name, b"ok")
    assert info["name"] == name
    assert api.get(name).content == b"ok"
    assert api.names() == [name]
