"""``/whoami`` and ``/tokens``: a user's own tokens, never more powerful than the one asking."""

from __future__ import annotations

import itertools
import os
from datetime import timedelta

import pytest

from tests.support.api import Api
from tests.support.live_server import LiveServer
from tests.support.tokens import mint, token_id
from updl_server.catalog import utcnow

_users = itertools.count(1)


@pytest.fixture
def user(live_server: LiveServer) -> tuple[str, Api]:
    name = f"tokens{next(_users)}-{os.getpid()}"
    return name, Api(live_server.url, live_server.add_user(name))


def test_whoami_says_who_what_and_how_much(live_server: LiveServer, user: tuple[str, Api]) -> None:
    name, full = user
    full.upload("a.bin", b"12345")
    scoped = Api(live_server.url, mint(live_server, name, scopes=("read",), prefix="ci/", label="ci job"))
    me = scoped.request("GET", "/whoami").json()
    assert me == {
        "user": name,
        "token_id": token_id(scoped.token),
        "scopes": ["read"],
        "prefix": "ci/",
        "expires": None,
        "label": "ci job",
        "usage": {
            "files": 1,
            "bytes": 5,
            "quota_bytes": None,
            "used_bytes": 5,
            "quota_files": None,
            "used_files": 1,
        },
    }
    assert Api(live_server.url, "nonsense").request("GET", "/whoami").status_code == 401


def test_a_token_creates_narrower_tokens_only(live_server: LiveServer, user: tuple[str, Api]) -> None:
    _, full = user
    made = full.request("POST", "/tokens", json={"scopes": ["read"], "prefix": "out/", "label": "dl"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["token"].startswith("updl_") and body["scopes"] == ["read"] and body["prefix"] == "out/"
    reader = Api(live_server.url, body["token"])
    assert reader.request("GET", "/files", params={"prefix": "out/"}).status_code == 200
    assert reader.put("out/x", b"x").status_code == 403
    # More scopes, a wider prefix, no expiry when the parent has one: all refused.
    refused = reader.request("POST", "/tokens", json={"scopes": "read,write"})
    assert refused.status_code == 403 and refused.json()["missing_scope"] == "write"
    assert reader.request("POST", "/tokens", json={"prefix": "o"}).status_code == 403
    narrower = reader.request("POST", "/tokens", json={"prefix": "out/sub/", "expires_in": "1h"})
    assert narrower.status_code == 201 and narrower.json()["scopes"] == ["read"]
    child = Api(live_server.url, narrower.json()["token"])
    assert child.request("POST", "/tokens", json={"expires_in": "2h"}).status_code == 403  # outlives its parent
    assert child.request("POST", "/tokens", json={}).json()["expires"] == narrower.json()["expires"]  # inherits


def test_bad_requests_are_400_not_500(user: tuple[str, Api]) -> None:
    _, full = user
    for body in ({"scopes": ["admin"]}, {"scopes": 3}, {"prefix": "/abs"}, {"expires_in": "soon"}, {"label": 1}):
        reply = full.request("POST", "/tokens", json=body)
        assert reply.status_code == 400, (body, reply.text)
        assert "error" in reply.json()
    assert full.request("POST", "/tokens", data=b"[1]").status_code == 400
    assert full.request("POST", "/tokens", data=b"{" * 5000).status_code == 413


def test_list_and_revoke_own_tokens(live_server: LiveServer, user: tuple[str, Api]) -> None:
    name, full = user
    second = Api(live_server.url, mint(live_server, name, scopes=("read",)))
    listed = full.request("GET", "/tokens").json()["tokens"]
    assert {t["id"] for t in listed} == {token_id(full.token), token_id(second.token)}
    text = str(listed)
    assert full.token.split("_", 2)[2] not in text and second.token.split("_", 2)[2] not in text  # never a secret
    assert all("hash" not in t for t in listed)
    # A read token cannot revoke the full one; the full one revokes the read one; a token revokes itself.
    assert second.request("DELETE", f"/tokens/{token_id(full.token)}").status_code == 403
    assert full.request("DELETE", f"/tokens/{token_id(second.token)}").status_code == 204
    assert second.request("GET", "/whoami").status_code == 401
    assert full.request("DELETE", "/tokens/0123456789abcdef").status_code == 404
    assert full.request("DELETE", f"/tokens/{'z' * 300}").status_code == 404
    revoked = next(t for t in full.request("GET", "/tokens").json()["tokens"] if t["id"] == token_id(second.token))
    assert revoked["revoked"] is not None
    assert full.request("DELETE", f"/tokens/{token_id(full.token)}").status_code == 204
    assert full.request("GET", "/whoami").status_code == 401


def test_another_users_token_is_not_found(live_server: LiveServer, user: tuple[str, Api]) -> None:
    _, full = user
    other = Api(live_server.url, live_server.add_user(f"other{next(_users)}-{os.getpid()}"))
    assert full.request("DELETE", f"/tokens/{token_id(other.token)}").status_code == 404
    assert other.request("GET", "/whoami").status_code == 200


def test_an_expired_token_is_401(live_server: LiveServer, user: tuple[str, Api]) -> None:
    name, _ = user
    expired = Api(live_server.url, mint(live_server, name, expires=utcnow() - timedelta(seconds=1)))
    reply = expired.request("GET", "/files")
    assert reply.status_code == 401 and "expired" in reply.json()["error"]
