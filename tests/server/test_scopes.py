"""Scoped tokens: each scope boundary crossed both ways, on every route that acts for a user."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests

from tests.support.api import Api, md5_hex
from tests.support.live_server import LiveServer
from tests.support.tokens import mint
from tests.support.tus import TUS, create, created, metadata

_users = itertools.count(1)


@dataclass
class Account:
    """A fresh user on the session's server: its name and a full-scope client."""

    server: LiveServer
    name: str
    full: Api

    def api(self, *scopes: str, prefix: str | None = None) -> Api:
        """A client whose token has only ``scopes`` (and ``prefix``)."""
        return Api(self.server.url, mint(self.server, self.name, scopes=scopes, prefix=prefix))


@pytest.fixture
def account(live_server: LiveServer) -> Account:
    name = f"scoped{next(_users)}-{os.getpid()}"
    return Account(live_server, name, Api(live_server.url, live_server.add_user(name)))


def _forbidden(response: requests.Response, scope: str) -> dict[str, object]:
    assert response.status_code == 403, response.text
    if response.request.method == "HEAD":  # no body to say why
        return {}
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, object] = response.json()
    assert body["missing_scope"] == scope
    assert isinstance(body["error"], str)
    return body


def _writes(api: Api, name: str) -> list[Callable[[], requests.Response]]:
    """Every way to write ``name``: PUT, multipart POST, tus creation."""
    return [
        lambda: api.put(name, b"new"),
        lambda: api.post_parts([("file", b"new", name), ("md5", md5_hex(b"new").encode())]),
        lambda: create(api, 3, name),
    ]


def test_a_read_token_reads_but_cannot_write_or_delete(account: Account) -> None:
    account.full.upload("r/a.txt", b"hello")
    reader = account.api("read")
    assert reader.get("r/a.txt").content == b"hello"
    assert reader.request("HEAD", "/files/r/a.txt").status_code == 200
    assert reader.request("GET", "/info/r/a.txt").json()["size"] == 5
    assert reader.names() == ["r/a.txt"]
    assert reader.request("GET", "/usage").json()["files"] == 1
    for write in [*_writes(reader, "r/a.txt"), *_writes(reader, "r/new.txt")]:
        _forbidden(write(), "write")
    _forbidden(reader.request("DELETE", "/files/r/a.txt"), "delete")
    assert account.full.names() == ["r/a.txt"]  # nothing changed
    assert account.full.get("r/a.txt").content == b"hello"


def test_a_write_token_writes_and_replaces_but_cannot_delete_or_read(account: Account) -> None:
    writer = account.api("write")
    assert writer.put("w.txt", b"one").status_code == 200
    assert writer.put("w.txt", b"two").status_code == 200  # a replace needs write only
    assert writer.post_parts([("file", b"three", "w.txt"), ("md5", md5_hex(b"three").encode())]).status_code == 200
    assert create(writer, 3, "tus.bin").status_code == 201
    _forbidden(writer.request("DELETE", "/files/w.txt"), "delete")
    _forbidden(writer.get("w.txt"), "read")
    _forbidden(writer.request("GET", "/files"), "read")
    _forbidden(writer.request("GET", "/info/w.txt"), "read")
    assert account.full.get("w.txt").content == b"three"


def test_a_delete_token_deletes_only(account: Account) -> None:
    account.full.upload("d.txt", b"x")
    deleter = account.api("delete")
    _forbidden(deleter.get("d.txt"), "read")
    _forbidden(deleter.put("d.txt", b"y"), "write")
    assert deleter.request("DELETE", "/files/d.txt").status_code == 204
    assert account.full.names() == []


def test_a_prefix_token_cannot_reach_outside_its_prefix(account: Account) -> None:
    account.full.upload("ci/build/a.bin", b"inside")
    account.full.upload("secret.txt", b"outside")
    scoped = account.api("read", "write", "delete", prefix="ci/")
    assert scoped.get("ci/build/a.bin").content == b"inside"
    assert scoped.names("ci/") == ["ci/build/a.bin"]
    assert scoped.names("ci/build/") == ["ci/build/a.bin"]
    reply = scoped.request("GET", "/files", params={"prefix": "ci/", "delimiter": "/"})
    assert reply.json()["prefixes"] == ["ci/build/"]
    # Outside: refused, never filtered; the body says which prefix the token has.
    assert _forbidden(scoped.request("GET", "/files"), "read")["prefix"] == "ci/"
    _forbidden(scoped.request("GET", "/files", params={"prefix": "c"}), "read")
    _forbidden(scoped.request("GET", "/files", params={"prefix": "se", "delimiter": "/"}), "read")
    _forbidden(scoped.request("GET", "/usage"), "read")
    _forbidden(scoped.get("secret.txt"), "read")
    _forbidden(scoped.request("HEAD", "/files/secret.txt"), "read")
    _forbidden(scoped.request("GET", "/info/secret.txt"), "read")
    _forbidden(scoped.get("missing.txt"), "read")  # no hint whether it exists
    for write in _writes(scoped, "outside.txt"):
        _forbidden(write(), "write")
    _forbidden(scoped.request("DELETE", "/files/secret.txt"), "delete")
    assert scoped.put("ci/new.txt", b"n").status_code == 200
    assert scoped.request("DELETE", "/files/ci/new.txt").status_code == 204
    assert account.full.names() == ["ci/build/a.bin", "secret.txt"]


def test_tus_routes_need_write_and_the_prefix(account: Account) -> None:
    path = created(account.full, 4, "outside.bin")
    tus = TUS
    reader = account.api("read")
    _forbidden(reader.request("HEAD", path, headers=tus), "write")
    _forbidden(reader.request("DELETE", path, headers=tus), "write")
    scoped = account.api("write", prefix="ci/")
    _forbidden(scoped.request("HEAD", path, headers=tus), "write")
    patch = {**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    _forbidden(scoped.request("PATCH", path, headers=patch, data=b"abcd"), "write")
    _forbidden(scoped.request("DELETE", path, headers=tus), "write")
    headers = {**tus, "Upload-Length": "1", "Upload-Metadata": metadata(name="outside2.bin")}
    _forbidden(scoped.request("POST", "/tus/", headers=headers), "write")
    writer = account.api("write")
    assert writer.request("DELETE", path, headers=tus).status_code == 204  # termination needs write


def test_403_is_not_401(account: Account, live_server: LiveServer) -> None:
    reader = account.api("read")
    assert reader.put("x", b"x").status_code == 403
    assert "www-authenticate" not in reader.put("x", b"x").headers
    unknown = Api(live_server.url, "updl_0123456789abcdef_" + "A" * 43)
    assert unknown.put("x", b"x").status_code == 401
