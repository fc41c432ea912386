"""Expiring files: Updl-Expires-In, tus expires_in, the defaults, the filter in every query, the sweep."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.support.api import Api, md5_hex
from tests.support.live_server import LiveServer
from tests.support.racing import committed_blobs
from tests.support.retention import expire, server_command, set_quota
from tests.support.tus import STREAM, TUS, created, metadata
from updl_server.catalog import Catalog, utcnow
from updl_server.retention import sweep_expired
from updl_server.storage.local import LocalBlobStore

ServerFactory = Callable[..., LiveServer]
DAY = 86400


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


def _kept_for(info: dict[str, object]) -> float:
    """Seconds between a FileInfo's ``created`` and ``expires``."""
    assert isinstance(info["expires"], str) and isinstance(info["created"], str), info
    return (_time(info["expires"]) - _time(info["created"])).total_seconds()


def _user(server: LiveServer) -> tuple[str, Api]:
    name = f"ret-{uuid.uuid4().hex[:10]}"
    return name, Api(server.url, server.add_user(name))


def test_put_and_post_carry_an_expiry(api: Api) -> None:
    """``Updl-Expires-In`` on PUT and POST sets ``expires``; the download says it too; without it: never."""
    put = api.put("a.txt", b"alpha", **{"Updl-Expires-In": "3600"})
    assert put.status_code == 200, put.text
    assert _kept_for(put.json()) == 3600
    data = b"beta" * 100
    posted = api.request(
        "POST",
        "/upload",
        files={"file": ("b.txt", data)},
        data={"md5": md5_hex(data)},
        headers={"Updl-Expires-In": str(14 * DAY)},
    )
    assert posted.status_code == 200, posted.text
    assert _kept_for(posted.json()) == 14 * DAY
    assert "Updl-Expires" in api.get("a.txt").headers
    assert api.request("HEAD", "/files/a.txt").headers["Updl-Expires"].endswith("GMT")
    assert api.upload("c.txt", b"kept")["expires"] is None
    assert "Updl-Expires" not in api.get("c.txt").headers


@pytest.mark.parametrize("value", ["0", "-5", "1.5", "soon", "9" * 30, str(101 * 366 * DAY)])
def test_a_bad_expiry_is_400_and_stores_nothing(api: Api, value: str) -> None:
    response = api.put("bad.txt", b"x", **{"Updl-Expires-In": value})
    assert response.status_code == 400 and response.json()["field"] == "Updl-Expires-In"
    assert api.names() == []


def test_tus_metadata_expires_in(api: Api) -> None:
    """tus: ``expires_in`` in Upload-Metadata; the completing answer carries ``Updl-Expires``."""
    data = b"t" * 1000
    path = created(api, len(data), "t.bin", expires_in="7200")
    done = api.request("PATCH", path, data=data, headers={**STREAM, "Upload-Offset": "0"})
    assert done.status_code == 204, done.text
    assert "Updl-Expires" in done.headers
    assert _kept_for(api.request("GET", "/info/t.bin").json()) == 7200
    bad = api.request(
        "POST", "/tus/", headers={**TUS, "Upload-Length": "5", "Upload-Metadata": metadata(name="u", expires_in="x")}
    )
    assert bad.status_code == 400, bad.text


def test_an_expired_file_is_gone_at_once_and_swept(server_factory: ServerFactory) -> None:
    """Past its expiry a file is absent from listing, usage, GET, HEAD, info, DELETE; ``sweep`` frees its blob."""
    server = server_factory()
    _, api = _user(server)
    api.put("docs/old.txt", b"old", **{"Updl-Expires-In": "60"})
    api.upload("docs/new.txt", b"new")
    expire(server, "docs/old.txt")
    assert api.names() == ["docs/new.txt"]
    folders = api.request("GET", "/files", params={"delimiter": "/"}).json()
    assert folders["prefixes"] == ["docs/"]
    assert api.request("GET", "/usage").json()["files"] == 1
    for method, route in [("GET", "/files"), ("HEAD", "/files"), ("GET", "/info"), ("DELETE", "/files")]:
        assert api.request(method, f"{route}/docs/old.txt").status_code == 404, (method, route)
    assert len(committed_blobs(server.data_dir)) == 2  # not swept yet: only hidden
    swept = server_command(server, "sweep")
    assert swept.returncode == 0, swept.stderr
    assert swept.stdout.strip() == "1"
    assert len(committed_blobs(server.data_dir)) == 1
    assert api.get("docs/new.txt").content == b"new"


def test_an_expired_name_can_be_stored_again(server_factory: ServerFactory) -> None:
    """Uploading over an expired (not yet swept) file is a new file: If-None-Match: * passes."""
    server = server_factory()
    _, api = _user(server)
    api.put("n.txt", b"first", **{"Updl-Expires-In": "60"})
    expire(server, "n.txt")
    again = api.put("n.txt", b"second", **{"If-None-Match": "*"})
    assert again.status_code == 200, again.text
    assert again.json()["expires"] is None
    assert server_command(server, "sweep").stdout.strip() == "0"
    assert api.get("n.txt").content == b"second"
    assert len(committed_blobs(server.data_dir)) == 1


def test_the_periodic_sweep_frees_blobs(server_factory: ServerFactory) -> None:
    """``--sweep-interval``: the server's own sweep deletes an expired file's blob."""
    from tests.support.waiting import wait_for

    server = server_factory("--sweep-interval", "0.1")
    _, api = _user(server)
    api.put("p.txt", b"periodic", **{"Updl-Expires-In": "60"})
    expire(server, "p.txt")
    wait_for(lambda: not committed_blobs(server.data_dir), "the periodic sweep")
    assert api.names() == []


def test_retention_defaults(server_factory: ServerFactory) -> None:
    """The server's ``--default-retention``, then the user's ``--retention``, then the upload's header."""
    server = server_factory("--default-retention", "30d")
    name, api = _user(server)
    assert _kept_for(api.upload("a", b"a")) == 30 * DAY
    assert api.request("GET", "/usage").json()["retention_seconds"] == 30 * DAY
    shown = set_quota(server, name, "--retention", "14d")
    assert "retention: 1209600s" in shown
    assert _kept_for(api.upload("b", b"b")) == 14 * DAY
    assert _kept_for(api.put("c", b"c", **{"Updl-Expires-In": "3600"}).json()) == 3600
    set_quota(server, name, "--retention", "none")
    assert _kept_for(api.upload("d", b"d")) == 30 * DAY


def test_the_sweep_with_an_injected_clock(tmp_path: Path) -> None:
    """In-process: the catalog's clock decides what is live; the sweep deletes rows, then blobs, once."""
    catalog = Catalog(f"sqlite:///{tmp_path / 'updl.db'}")
    catalog.create_tables()
    store = LocalBlobStore(tmp_path / "blobs")
    store.start()
    owner = catalog.add_user("clock")
    locations = []
    for name, expires_in in [("short", 60), ("long", 3600), ("forever", None)]:
        writer = store.begin(owner)
        writer.write(name.encode())
        location = writer.commit()
        locations.append(location)
        catalog.put_file(owner, name, len(name), md5_hex(name.encode()), location, expires_in=expires_in)
    start = catalog.clock()
    catalog.clock = lambda: start + timedelta(seconds=61)
    assert [r.name for r in catalog.list_files(owner)] == ["forever", "long"]
    assert catalog.file(owner, "short") is None
    assert catalog.usage(owner) == (2, len("long") + len("forever"))
    assert sweep_expired(catalog, store) == 1
    assert sweep_expired(catalog, store) == 0  # claimed once
    assert not catalog.is_referenced(locations[0])
    catalog.clock = lambda: start + timedelta(hours=2)
    assert sweep_expired(catalog, store) == 1
    assert [r.name for r in catalog.list_files(owner)] == ["forever"]
    assert sweep_expired(catalog, store, now=utcnow() + timedelta(days=365)) == 0
    store.close()
    catalog.close()
