"""Helpers for the browser tests: Chromium's settings, a page's log, signing in.

Chromium comes from the system (``apt-get install chromium``; ``bash scripts/install-browser.sh``),
because Playwright's own browser download cannot work on a closed network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = "run: bash scripts/install-browser.sh (apt-get install chromium)"
# Without the background-networking flags Chromium tries to reach Google's services, and a
# closed network refuses its connections; QUIC and the GPU are of no use headless.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000  # any one wait on the page: a hang fails the test instead of the session
UPLOAD_TIMEOUT_MS = 90_000  # a 30 MB upload (hash, then send) on a loaded CI machine
MIB = 1024 * 1024
VENDOR = Path(__file__).parents[2] / "server" / "updl_server" / "web" / "static" / "vendor"


def missing(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {message} (.ci/run must install it)")
    pytest.skip(message)


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


def sign_in(page: Any, url: str, token: str) -> None:
    """Open the page at ``url`` and sign in with ``token``, using the keyboard."""
    page.goto(url + "/")
    page.get_by_label("Token").fill(token)
    page.get_by_label("Token").press("Enter")
    page.locator("#app").wait_for(state="visible")


# Chromium's save dialog cannot be clicked by Playwright: this stand-in answers
# `showSaveFilePicker` with a file in the Origin Private File System, created and emptied as
# Chromium does with the file a user chooses. It records each suggested name, and the size of
# every write into a file's writable stream (to show the download arrives in chunks).
OPFS_PICKER = """
window.picked = [];
window.writeSizes = [];
window.showSaveFilePicker = async ({ suggestedName } = {}) => {
  window.picked.push(suggestedName);
  const root = await navigator.storage.getDirectory();
  const handle = await root.getFileHandle(suggestedName, { create: true });
  const emptied = await handle.createWritable();
  await emptied.close();
  return handle;
};
const write = FileSystemWritableFileStream.prototype.write;
FileSystemWritableFileStream.prototype.write = function (data) {
  window.writeSizes.push(data.byteLength ?? data.size ?? -1);
  return write.call(this, data);
};
"""
# Firefox and Safari have no `showSaveFilePicker`: without it the page takes its other path.
NO_PICKER = "delete window.showSaveFilePicker;"


def opfs_files(page: Any) -> dict[str, dict[str, Any]]:
    """The files in the page's Origin Private File System: name → ``{size, md5}``.

    The MD5 is hash-wasm's (the page's copy), streamed from the file: nothing is read whole.
    """
    return page.evaluate("""async () => {
        const found = {};
        const root = await navigator.storage.getDirectory();
        for await (const [name, handle] of root.entries()) {
          const file = await handle.getFile();
          const hasher = await hashwasm.createMD5();
          hasher.init();
          const reader = file.stream().getReader();
          for (let c = await reader.read(); !c.done; c = await reader.read()) hasher.update(c.value);
          found[name] = { size: file.size, md5: hasher.digest("hex") };
        }
        return found;
    }""")
