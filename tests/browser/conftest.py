"""Fixtures for the browser tests: Debian's Chromium driven by Playwright against a real server.

Chromium comes from the system (``apt-get install chromium``; ``bash scripts/install-browser.sh``),
because Playwright's own browser download cannot work on a closed network. Without Chromium
or the ``playwright`` package the tests skip locally and fail under ``CI=true``, as the
PostgreSQL and interop tests do.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, INSTALL_HINT, TIMEOUT_MS, VENDOR, PageLog, missing, sign_in
from tests.support.interop import write_pattern
from tests.support.live_server import LiveServer


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One headless Chromium for these tests (each test gets its own context).

    Package scope, not session: Playwright's sync API keeps an event loop running on the
    main thread while it is started, and later tests elsewhere call ``asyncio.run``.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package is not installed; pip install -e '.[test]'")
    if shutil.which(CHROMIUM) is None:
        missing(f"{CHROMIUM} is missing; {INSTALL_HINT}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (storage, cookies) for one test, downloads allowed."""
    ctx = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    """A page with a ``log`` (console errors, requests); fails the test on a console error."""
    page = context.new_page()
    page.log = PageLog(page)
    yield page
    assert page.log.errors == [], "the page logged errors (a CSP violation shows here)"


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
        '<script src="/tus.min.js"></script><p>another origin</p>\n'
    )

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
