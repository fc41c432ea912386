"""Share links: tokenless downloads of one file, bounded by expiry, revocation and a count."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import requests

from tests.server.test_access_admin import admin
from tests.support.api import Api
from tests.support.live_server import LiveServer
from updl_server.catalog import Catalog
from updl_server.shares import add_share, find_share

TIMEOUT = 30


def share(api: Api, name: str, **fields: object) -> requests.Response:
    return api.request("POST", "/shares", json={"name": name, "expires_in": 3600, **fields})


def test_a_link_downloads_without_a_token_with_range_and_etag(api: Api) -> None:
    """No Authorization; Range and If-None-Match work; the safe headers are set."""
    api.upload("doc.html", b"<script>alert(1)</script>")
    made = share(api, "doc.html")
    assert made.status_code == 201, made.text
    url = made.json()["url"]
    got = requests.get(url, timeout=TIMEOUT)
    assert got.status_code == 200
    assert got.content == b"<script>alert(1)</script>"
    assert got.headers["Content-Disposition"] == "attachment"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in got.headers["Content-Security-Policy"]
    assert "default-src 'none'" in got.headers["Content-Security-Policy"]
    part = requests.get(url, headers={"Range": "bytes=1-6"}, timeout=TIMEOUT)
    assert part.status_code == 206
    assert part.content == b"script"
    same = requests.get(url, headers={"If-None-Match": got.headers["ETag"]}, timeout=TIMEOUT)
    assert same.status_code == 304
    head = requests.head(url, timeout=TIMEOUT)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "25"


def test_a_wrong_secret_or_extra_path_exposes_nothing(api: Api) -> None:
    """Another secret, a path after the link or an unknown id: JSON 404."""
    api.upload("a", b"aaa")
    api.upload("b", b"bbb")
    url = share(api, "a").json()["url"]
    base, _, _secret = url.rpartition(".")
    for wrong in [base + ".x" + _secret[1:], url + "/b", url + "/../b", base, url + "x" * 200]:
        answer = requests.get(wrong, timeout=TIMEOUT)
        assert answer.status_code == 404, wrong
        assert "error" in answer.json()


def test_download_limit_and_revocation(api: Api) -> None:
    """max_downloads GETs, then 410; HEAD does not count; a revoked link is 410; listing shows counts."""
    api.upload("f", b"data")
    made = share(api, "f", max_downloads=2).json()
    url = made["url"]
    assert requests.head(url, timeout=TIMEOUT).status_code == 200
    assert requests.get(url, timeout=TIMEOUT).status_code == 200
    assert requests.get(url, timeout=TIMEOUT).status_code == 200
    used_up = requests.get(url, timeout=TIMEOUT)
    assert used_up.status_code == 410
    assert "error" in used_up.json()
    listed = api.request("GET", "/shares").json()["shares"]
    assert [(s["id"], s["downloads"]) for s in listed] == [(made["id"], 2)]
    other = share(api, "f").json()
    assert api.request("DELETE", f"/shares/{other['id']}").status_code == 204
    assert requests.get(other["url"], timeout=TIMEOUT).status_code == 410
    assert api.request("DELETE", f"/shares/{other['id']}").status_code == 404


def test_another_users_file_cannot_be_shared_or_revoked(
    api: Api, live_server: LiveServer, make_api: Callable[[LiveServer], Api]
) -> None:
    """Sharing a name the caller lacks is 404; revoking another user's link is 404."""
    other_api = make_api(live_server)
    other_api.upload("secret", b"s")
    assert share(api, "secret").status_code == 404
    theirs = share(other_api, "secret").json()
    assert api.request("DELETE", f"/shares/{theirs['id']}").status_code == 404
    assert requests.get(theirs["url"], timeout=TIMEOUT).status_code == 200


def test_bounded_input(api: Api) -> None:
    """expires_in is required and at most 30 days; max_downloads positive; no token is 401."""
    api.upload("f", b"x")
    bad: list[dict[str, object]] = [
        {"expires_in": None},
        {"expires_in": 31 * 24 * 3600},
        {"expires_in": 0},
        {"max_downloads": 0},
    ]
    for fields in bad:
        answer = api.request("POST", "/shares", json={"name": "f", "expires_in": 60, **fields})
        assert answer.status_code == 400, fields
    assert api.request("POST", "/shares", data=b"[").status_code == 400
    assert requests.post(api.base + "/shares", json={"name": "f", "expires_in": 60}, timeout=TIMEOUT).status_code == 401


def test_a_link_expires_by_the_injected_clock(tmp_path: Path) -> None:
    """In-process: usable until ``expires``, not after (no sleeping)."""
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.create_tables()
    owner = catalog.add_user("clock")
    made, _secret = add_share(catalog, owner, "f", 60, None)
    found = find_share(catalog, made.id)
    assert found is not None
    assert found.usable(catalog.clock())
    assert not found.usable(made.created + timedelta(seconds=60))
    catalog.close()


def test_a_disabled_users_links_stop_working(tmp_path: Path) -> None:
    """Disabling the owner makes the link 404 like an unknown one; enabling brings it back."""
    server = LiveServer(data_dir=tmp_path / "data")
    server.start()
    try:
        api = Api(server.url, server.add_user("frank"))
        api.upload("f", b"data")
        url = share(api, "f").json()["url"]
        assert requests.get(url, timeout=TIMEOUT).status_code == 200
        assert admin(server, "user", "disable", "frank").returncode == 0
        refused = requests.get(url, timeout=TIMEOUT)
        assert refused.status_code == 404 and "error" in refused.json()
        assert admin(server, "user", "enable", "frank").returncode == 0
        assert requests.get(url, timeout=TIMEOUT).content == b"data"
    finally:
        server.stop()
