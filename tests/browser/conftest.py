"""Fixtures for the browser tests: Debian's Chromium driven by Playwright against a real server.

Chromium comes from the system (``apt-get install chromium``; ``bash scripts/install-browser.sh``),
because Playwright's own browser download cannot work on a closed network. Without Chromium
or the ``playwright`` package the tests skip locally and fail under ``CI=true``, as the
PostgreSQL and interop tests do.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.e2e.conftest import run_updl  # noqa: F401  (a fixture, reused)
from tests.interop.conftest import write_pattern

CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = "run: bash scripts/install-browser.sh (apt-get install chromium)"
# Without the background-networking flags Chromium tries to reach Google's services, and a
# closed network refuses its connections; QUIC and the GPU are of no use headless.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 30_000  # any one wait on the page: a hang fails the test instead of the session
UPLOAD_TIMEOUT_MS = 90_000  # a 30 MB upload (hash, then send) on a loaded CI machine
MIB = 1024 * 1024
VENDOR = (Path(__file__).parents[2] / "server" / "updl_server" / "web" / "static" / "vendor")


def _missing(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {message} (.ci/run must install it)")
    pytest.skip(message)


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One headless Chromium for these tests (each test gets its own context).

    Package scope, not session: Playwright's sync API keeps an event loop running on the
    main thread while it is started, and later tests elsewhere call ``asyncio.run``.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed; pip install -e '.[test]'")
    if shutil.which(CHROMIUM) is None:
        _missing(f"{CHROMIUM} is missing; {INSTALL_HINT}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (storage, cookies) for one test, downloads allowed."""
    ctx = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    yield ctx
    ctx.close()


class PageLog:
    """What the page said on its console and what it requested: CSP violations show here."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        self.requests: list[Any] = []
        self.workers: list[str] = []  # URLs of the Web Workers the page started
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("worker", lambda worker: self.workers.append(worker.url))
        page.on("request", lambda request: self.requests.append(request))

    def _on_console(self, message: Any) -> None:
        # An HTTP error answer is logged too ("Failed to load resource"): tests expect some.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def tus(self, method: str) -> list[Any]:
        """The tus requests of ``method`` sent so far."""
        return [r for r in self.requests if r.method == method and "/tus/" in r.url]


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    """A page with a ``log`` (console errors, requests); fails the test on a console error."""
    page = context.new_page()
    page.log = PageLog(page)
    yield page
    assert page.log.errors == [], "the page logged errors (a CSP violation shows here)"


def sign_in(page: Any, url: str, token: str) -> None:
    """Open the page at ``url`` and sign in with ``token``, using the keyboard."""
    page.goto(url + "/")
    page.get_by_label("Token").fill(token)
    page.get_by_label("Token").press("Enter")
    page.locator("#app").wait_for(state="visible")


@pytest.fixture
def signed_in(page: Any, live_server: LiveServer, token: str) -> Any:
    """``page``, open at ``live_server`` and signed in as ``token``."""
    sign_in(page, live_server.url, token)
    return page


@pytest.fixture
def pattern(tmp_path: Path) -> Callable[..., Path]:
    """``pattern(name, size)``: a deterministic file under ``tmp_path/src``."""

    def make(name: str, size: int) -> Path:
        return write_pattern(tmp_path / "src" / name, size, seed=name)

    return make


@pytest.fixture
def other_origin(tmp_path: Path) -> Iterator[str]:
    """A second origin (another port) serving ``tus.min.js`` and an empty page: its URL."""
    root = tmp_path / "other-origin"
    root.mkdir()
    shutil.copy(VENDOR / "tus.min.js", root / "tus.min.js")
    (root / "index.html").write_text(
        '<!doctype html><meta charset="utf-8"><title>elsewhere</title>'
        '<script src="/tus.min.js"></script><p>another origin</p>\n')

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
