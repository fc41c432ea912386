"""Health, authentication on every protected route, JSON errors, and the user commands."""

from __future__ import annotations

import asyncio
import errno
import json
import subprocess
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tests.support.api import TIMEOUT, Api, multipart
from tests.support.live_server import clean_env, console_script
from updl_server.app import create_app
from updl_server.auth import mint_token
from updl_server.catalog import Catalog, FileRecord
from updl_server.config import ServerConfig

if TYPE_CHECKING:
    from tests.support.live_server import LiveServer

PROTECTED = [
    ("POST", "/upload"),
    ("PUT", "/files/a.txt"),
    ("GET", "/files"),
    ("GET", "/info/a.txt"),
    ("GET", "/files/a.txt"),
    ("HEAD", "/files/a.txt"),
    ("DELETE", "/files/a.txt"),
]


def test_health_needs_no_token(live_server: LiveServer) -> None:
    """GET /health answers 200 with status and version, without a token."""
    response = requests.get(f"{live_server.url}/health", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["version"]


def _bad_credentials(token: str) -> list[dict[str, str]]:
    token_id = token.split("_")[1]
    return [
        {},
        {"Authorization": ""},
        {"Authorization": f"Basic {token}"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Bearer updl_0123456789abcdef_" + "x" * 43},  # unknown id
        {"Authorization": f"Bearer updl_{token_id}_" + "x" * 43},  # right id, wrong secret
        {"Authorization": f"Bearer {token}x"},
    ]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_protected_route_answers_401(live_server: LiveServer, token: str, method: str, path: str) -> None:
    """Missing, malformed, unknown or wrong tokens get a JSON 401 with the challenge."""
    api = Api(live_server.url, token)
    api.upload("a.txt", b"secret")
    body, content_type = multipart([("md5", b"0" * 32), ("file", b"x", "a.txt")])
    for headers in _bad_credentials(token):
        response = requests.request(
            method,
            live_server.url + path,
            timeout=TIMEOUT,
            data=body,
            headers={"Content-Type": content_type, **headers},
        )
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        if method != "HEAD":
            assert response.headers["Content-Type"] == "application/json"
            assert response.json()["error"]
    # None of those attempts changed the file.
    assert api.get("a.txt").content == b"secret"


def test_unknown_route_and_wrong_method_are_json(api: Api) -> None:
    """Router errors (404 unknown route, 405 wrong method) are JSON too."""
    missing = api.request("GET", "/nope")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/json"
    assert missing.json()["error"]
    wrong = api.request("PATCH", "/files/a.txt")
    assert wrong.status_code == 405
    assert wrong.json()["error"]
    assert {"GET", "PUT", "DELETE", "POST"} <= {m.strip() for m in wrong.headers["Allow"].split(",")}
    assert api.request("GET", "/upload").status_code == 405


def _server_command(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    command = [console_script("updl-server"), *args, "--data-dir", str(server.data_dir)]
    return subprocess.run(command, capture_output=True, text=True, env=clean_env(), timeout=60)


def test_add_user_twice_points_to_new_token(live_server: LiveServer) -> None:
    """add-user refuses an existing name and points to new-token, whose token works."""
    first = live_server.add_user_with_command("twice")  # the one token from the console script
    again = _server_command(live_server, "add-user", "twice")
    assert again.returncode == 1
    assert again.stdout == ""
    assert "updl-server new-token twice" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    second = _server_command(live_server, "new-token", "twice")
    assert second.returncode == 0, second.stderr
    token = second.stdout.strip()
    assert token != first and token.startswith("updl_")
    # Both tokens work, for the same user.
    Api(live_server.url, first).upload("mine.txt", b"1")
    assert Api(live_server.url, token).names() == ["mine.txt"]


@pytest.mark.parametrize("args", [("new-token", "nobody"), ("add-user", "bad/name"), ("add-user", "x" * 65)])
def test_user_commands_refuse(live_server: LiveServer, args: tuple[str, ...]) -> None:
    """Unknown users and invalid user names exit 1 with a message and no stdout."""
    result = _server_command(live_server, *args)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip()


class BrokenCatalog(Catalog):
    """A catalog whose listing fails, as a database outage would (a fault, not a mock)."""

    error: Exception = RuntimeError("database went away")

    def list_files(
        self, owner_id: int, *, prefix: str = "", after: str | None = None, limit: int = 1000
    ) -> list[FileRecord]:
        """Fail like a lost database connection."""
        raise self.error


# An I/O error other than a full disk is a 500 too (only a full disk is a 507).
@pytest.mark.parametrize(
    "error", [RuntimeError("database went away"), OSError(errno.EIO, "Input/output error")], ids=repr
)
def test_unexpected_failure_is_json_500(tmp_path: Path, error: Exception) -> None:
    """An unexpected exception becomes the contract's JSON 500 (driven in-process over ASGI)."""
    catalog = BrokenCatalog(f"sqlite:///{tmp_path / 'updl.db'}")
    catalog.error = error
    catalog.create_tables()
    token = mint_token()
    catalog.add_token(catalog.add_user("u"), token.token_id, token.secret_hash)
    app = create_app(ServerConfig(data_dir=tmp_path), catalog=catalog)
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/files",
        "raw_path": b"/files",
        "query_string": b"",
        "root_path": "",
        "server": ("test", 80),
        "client": ("test", 1),
        "headers": [(b"authorization", f"Bearer {token.text}".encode())],
    }
    with pytest.raises(type(error)):  # re-raised after answering, so the server logs it
        asyncio.run(app(scope, receive, send))
    catalog.close()
    assert sent[0]["status"] == 500
    assert (b"content-type", b"application/json") in sent[0]["headers"]
    assert json.loads(sent[1]["body"]) == {"error": "internal server error"}


def test_db_url_puts_the_catalog_elsewhere(server_factory: Callable[..., LiveServer], tmp_path: Path) -> None:
    """``--db-url`` moves the catalog out of the data dir; the blobs stay in it."""
    db = tmp_path / "elsewhere" / "catalog.db"
    db.parent.mkdir()
    server = server_factory("--db-url", f"sqlite:///{db}")
    api = Api(server.url, server.add_user("remote-db"))
    api.upload("f.txt", b"stored")
    assert db.exists()
    assert not (server.data_dir / "updl.db").exists()
    assert api.get("f.txt").content == b"stored"
