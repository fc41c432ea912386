"""What a browser may do with the server: stored files never run in the page's origin, and
only the origins given with ``--cors-origin`` may call the API (tus-js-client from elsewhere)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
import requests

import updl
from tests.support.api import Api
from tests.support.browser import NO_PICKER, PageLog, sign_in
from tests.support.live_server import LiveServer

# If this ever ran in the server's origin it could read the token in sessionStorage.
EVIL_HTML = (
    b"<!doctype html><script>localStorage.setItem('pwned', sessionStorage.getItem("
    b"'updl.token') || 'yes'); fetch('/pwned-by-html');</script><p>evil</p>"
)
EVIL_SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>fetch("/pwned-by-svg")</script></svg>'
EVIL_NAME = "x<img src=pwned-by-name onerror=fetch('pwned-by-name')>.txt"


def test_uploaded_html_never_runs_in_the_page_origin(
    context: Any, page: Any, live_server: LiveServer, token: str, tmp_path
) -> None:
    with updl.Client(live_server.url, token) as client:
        for name, content in (("evil.html", EVIL_HTML), ("evil.svg", EVIL_SVG), (EVIL_NAME, b"text")):
            path = tmp_path / hashlib.md5(name.encode()).hexdigest()
            path.write_bytes(content)
            client.upload(path, name)
    page.add_init_script(NO_PICKER)  # the download-link path: the one that could render
    sign_in(page, live_server.url, token)
    # Its name is shown as text, not markup.
    page.locator("tr.file").nth(2).wait_for()
    assert page.locator("#rows img").count() == 0
    assert EVIL_NAME in page.locator("#rows").inner_text()

    # The page's download saves it; nothing is rendered, the page stays where it is.
    for name in ("evil.html", "evil.svg"):
        with page.expect_download() as download:
            page.get_by_role("button", name=f"Download {name}").click()
        assert download.value.suggested_filename == name
        assert page.url == live_server.url + "/"

    # Even opened directly, with the token, the browser downloads it instead of showing it.
    direct = context.new_page()
    direct_log = PageLog(direct)
    direct.set_extra_http_headers({"Authorization": f"Bearer {token}"})
    for name in ("evil.html", "evil.svg"):
        with direct.expect_download() as download, pytest.raises(Exception, match="Download is starting"):
            direct.goto(f"{live_server.url}/files/{name}")
        assert download.value.suggested_filename == name

    requested = [r.url for r in page.log.requests + direct_log.requests]
    assert not [url for url in requested if "pwned" in url]
    assert direct_log.errors == []
    assert page.evaluate("localStorage.getItem('pwned')") is None
    assert page.evaluate("sessionStorage.getItem('updl.token')") == token

    # What makes it so, for any browser: an attachment, a sandbox, no sniffing.
    answer = requests.get(
        f"{live_server.url}/files/evil.html", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert answer.headers["Content-Disposition"] == "attachment"
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Security-Policy"].startswith("sandbox")


def cross_origin_upload(page: Any, server_url: str, token: str, size: int) -> dict[str, Any]:
    """Upload ``size`` deterministic bytes with tus-js-client from the page's (other) origin,
    then read the stored file's headers with ``fetch``; what the browser let the page see."""
    return page.evaluate(
        """async ([endpoint, token, size]) => {
          const bytes = new Uint8Array(size).map((_, i) => (i * 7) % 251);
          const result = {};
          try {
            await new Promise((resolve, reject) => {
              const upload = new tus.Upload(new Blob([bytes]), {
                endpoint, chunkSize: 256 * 1024, retryDelays: null,
                headers: { Authorization: `Bearer ${token}` },
                metadata: { name: "from-elsewhere.bin" },
                onAfterResponse: (req, res) => {
                  if (req.getMethod() === "PATCH") {
                    result.etag = res.getHeader("ETag");
                    result.uploadMd5 = res.getHeader("Upload-Md5");
                  }
                },
                onSuccess: resolve, onError: reject,
              });
              upload.start();
            });
            result.uploaded = true;
            const got = await fetch(endpoint.replace("/tus/", "/files/from-elsewhere.bin"),
                                    { headers: { Authorization: `Bearer ${token}` } });
            result.getEtag = got.headers.get("ETag");
            result.contentMd5 = got.headers.get("Content-MD5");
            result.size = (await got.arrayBuffer()).byteLength;
          } catch (err) {
            result.uploaded = false;
            result.error = String(err && err.message || err);
          }
          return result;
        }""",
        [f"{server_url}/tus/", token, size],
    )


def expected_md5(size: int) -> str:
    return hashlib.md5(bytes((i * 7) % 251 for i in range(size))).hexdigest()


@pytest.mark.parametrize("allow", ["origin", "*"])
def test_cross_origin_tus_js_client_with_cors_origin(
    page: Any, server_factory: Callable[..., LiveServer], other_origin: str, allow: str
) -> None:
    server = server_factory("--cors-origin", other_origin if allow == "origin" else "*")
    token = server.add_user("elsewhere")
    page.goto(other_origin + "/")
    size = 600 * 1024 + 3
    result = cross_origin_upload(page, server.url, token, size)
    md5 = expected_md5(size)
    assert result == {
        "uploaded": True,
        "etag": f'"{md5}"',
        "uploadMd5": md5,
        "getEtag": f'"{md5}"',
        "contentMd5": result["contentMd5"],
        "size": size,
    }
    assert base64.b64decode(result["contentMd5"]) == bytes.fromhex(md5)
    with updl.Client(server.url, token) as client:
        assert client.info("from-elsewhere.bin").md5 == md5


def test_cross_origin_is_blocked_without_cors_origin(
    page: Any, server_factory: Callable[..., LiveServer], other_origin: str
) -> None:
    plain = server_factory()  # the default: no origin allowed
    other = server_factory("--cors-origin", "http://127.0.0.1:1")  # another origin allowed
    page.goto(other_origin + "/")
    for server in (plain, other):
        token = server.add_user("elsewhere")
        result = cross_origin_upload(page, server.url, token, 1000)
        assert result["uploaded"] is False, result
        assert Api(server.url, token).names() == []
    # The browser said why, on the page's console.
    assert any("CORS" in message for message in page.log.errors)
    page.log.errors.clear()
