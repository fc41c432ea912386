"""The page and the headers for browsers, over HTTP (no browser needed; tests/browser drives one).

The page gets a strict Content-Security-Policy; every other answer a sandboxing one and
``nosniff``; a stored file's bytes come as an attachment; CORS exists only for the origins
of ``--cors-origin`` (docs/api.md, "Browsers").
"""

from __future__ import annotations

import fnmatch
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.support.api import Api
from tests.support.live_server import LiveServer, clean_env, console_script

ROOT = Path(__file__).parents[2]
STATIC = ROOT / "server" / "updl_server" / "web" / "static"
ORIGIN = "http://app.example:8080"
TUS_HEADERS = "authorization, tus-resumable, upload-length, upload-metadata, upload-md5, content-type"


def preflight(url: str, origin: str, method: str = "POST", headers: str = TUS_HEADERS) -> requests.Response:
    return requests.options(
        url,
        headers={"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers},
        timeout=30,
    )


def test_the_page_and_its_policy(live_server: LiveServer) -> None:
    page = requests.get(live_server.url + "/", timeout=30)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self' 'wasm-unsafe-eval';" in policy
    assert "unsafe-inline" not in policy and "'unsafe-eval'" not in policy
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in page.text  # every script is a file of its own
    for src in (
        "/web/app.js",
        "/web/vendor/tus.min.js",
        "/web/md5-worker.js",
        "/web/vendor/hash-wasm-md5.umd.min.js",
        "/web/app.css",
    ):
        answer = requests.get(live_server.url + src, timeout=30)
        assert answer.status_code == 200, src
        assert answer.headers["Content-Type"].startswith("text/css" if src.endswith(".css") else "text/javascript"), src
        assert answer.headers["Content-Security-Policy"] == policy  # the worker's own policy
    assert requests.get(live_server.url + "/web/nope.js", timeout=30).status_code == 404


def test_api_answers_are_sandboxed_and_files_are_attachments(live_server: LiveServer, api: Api) -> None:
    api.upload("page.html", b"<script>alert(1)</script>")
    for method in ("GET", "HEAD"):
        answer = api.request(method, "/files/page.html")
        assert answer.status_code == 200
        assert answer.headers["Content-Disposition"] == "attachment"
        assert answer.headers["Content-Security-Policy"].startswith("sandbox;")
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    ranged = api.get("page.html", Range="bytes=0-3")
    assert ranged.status_code == 206 and ranged.headers["Content-Disposition"] == "attachment"
    listing = api.request("GET", "/files")
    assert "Content-Disposition" not in listing.headers
    assert listing.headers["Content-Security-Policy"].startswith("sandbox;")
    missing = api.request("GET", "/files/nope")
    assert missing.status_code == 404 and "Content-Disposition" not in missing.headers


def test_no_cors_by_default(live_server: LiveServer, api: Api) -> None:
    answer = preflight(f"{live_server.url}/tus/", ORIGIN)
    assert "Access-Control-Allow-Origin" not in answer.headers
    listing = requests.get(
        f"{live_server.url}/files",
        timeout=30,
        headers={"Origin": ORIGIN, "Authorization": api.session.headers["Authorization"]},
    )
    assert listing.status_code == 200 and "Access-Control-Allow-Origin" not in listing.headers


def test_cors_for_the_configured_origin(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory("--cors-origin", ORIGIN, "--cors-origin", "https://other.example")
    answer = preflight(f"{server.url}/tus/", ORIGIN)
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "PATCH" in answer.headers["Access-Control-Allow-Methods"]
    allowed = answer.headers["Access-Control-Allow-Headers"].lower()
    for header in [*TUS_HEADERS.split(", "), "upload-offset", "if-range", "content-md5"]:
        assert header in allowed, header
    assert preflight(f"{server.url}/files/x", "https://other.example", "DELETE").status_code == 200
    # Another origin gets no permission.
    refused = preflight(f"{server.url}/tus/", "http://evil.example")
    assert refused.status_code == 400
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert preflight(f"{server.url}/tus/", ORIGIN, headers="x-unknown").status_code == 400
    # Answers expose what clients read: tus headers, ETag, Content-MD5.
    token = server.add_user("cors")
    api = Api(server.url, token)
    api.upload("a.bin", b"abc")
    answer = requests.get(
        f"{server.url}/files/a.bin", timeout=30, headers={"Origin": ORIGIN, "Authorization": f"Bearer {token}"}
    )
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = answer.headers["Access-Control-Expose-Headers"].lower()
    for header in (
        "etag",
        "content-md5",
        "upload-offset",
        "upload-md5",
        "location",
        "tus-resumable",
        "upload-length",
        "upload-expires",
        "content-range",
    ):
        assert header in exposed, header
    assert "Access-Control-Allow-Credentials" not in answer.headers  # tokens, never cookies
    # An error answer carries it too, so a page can read the server's message.
    unauthorized = requests.get(f"{server.url}/files", headers={"Origin": ORIGIN}, timeout=30)
    assert unauthorized.status_code == 401
    assert unauthorized.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_cors_origin_from_the_environment(tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data", env={"UPDL_SERVER_CORS_ORIGIN": f"{ORIGIN} https://b.example"})
    server.start()
    try:
        for origin in (ORIGIN, "https://b.example"):
            assert preflight(f"{server.url}/tus/", origin).headers["Access-Control-Allow-Origin"] == origin
    finally:
        server.stop()


@pytest.mark.parametrize("origin", ["ftp://x.example", "http://x.example/path", "x.example", ""])
def test_a_bad_cors_origin_is_a_usage_error(origin: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [console_script("updl-server"), "run", "--data-dir", str(tmp_path), "--cors-origin", origin],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert "not an origin" in result.stderr


def test_the_page_ships_in_the_package() -> None:
    """Every file of the page is matched by updl-server's package-data, so a wheel has it."""
    config = tomllib.loads((ROOT / "server" / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["updl_server"]
    package = ROOT / "server" / "updl_server"
    files = [p.relative_to(package).as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert "web/static/vendor/tus.min.js" in files
    assert "web/static/vendor/licenses/tus-js-client-4.3.1.txt" in files
    unshipped = [f for f in files if not any(fnmatch.fnmatch(f, p) and f.count("/") == p.count("/") for p in patterns)]
    assert unshipped == []
