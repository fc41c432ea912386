"""Take docs/browser.png: the updl-server page in Chromium, with a few files and uploads.

Run from a checkout with the test extra installed (Playwright) and /usr/bin/chromium
(``bash scripts/install-browser.sh``): ``.venv/bin/python scripts/screenshot-web.py``.
It starts a throwaway server on a free port, stores some files with the SDK, uploads two
through the page and photographs it. Writes docs/browser.png (or the path given).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

import updl

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data, src = Path(tmp) / "data", Path(tmp) / "src"
        src.mkdir()
        token = subprocess.run(
            [BIN / "updl-server", "add-user", "demo", "--data-dir", data], capture_output=True, text=True, check=True
        ).stdout.strip()
        server = subprocess.Popen(
            [BIN / "updl-server", "run", "--port", "0", "--data-dir", data, "--log-level", "warning"],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stderr is not None
            found = re.search(r"listening on (\S+)", server.stderr.readline())
            assert found, "updl-server did not start"
            url = found.group(1)
            with updl.Client(url, token) as client:
                for name, size in (
                    ("builds/41/app.tar.gz", 48_213_504),
                    ("builds/42/app.tar.gz", 48_227_840),
                    ("release-notes.md", 6_144),
                    ("reports/coverage.html", 812_345),
                    ("datasets/train.parquet", 3_500_000),
                ):
                    path = src / name.replace("/", "_")
                    path.write_bytes(name.encode() * (size // len(name)))
                    client.upload(path, name)
            for name, size in (("photo-2026-11-29.jpg", 4_200_000), ("scan.pdf", 30_000_000)):
                (src / name).write_bytes(name.encode() * (size // len(name)))
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = browser.new_page(viewport={"width": 1100, "height": 1000})
                page.goto(url + "/")
                page.get_by_label("Token").fill(token)
                page.get_by_label("Token").press("Enter")
                page.locator("#app").wait_for()
                page.get_by_label("Folder on the server (optional)").fill("uploads/today")
                with page.expect_file_chooser() as chooser:
                    page.get_by_role("button", name="Choose files…").click()
                chooser.value.set_files([str(src / "photo-2026-11-29.jpg"), str(src / "scan.pdf")])
                for name in ("photo-2026-11-29.jpg", "scan.pdf"):
                    page.locator(f'li.upload[data-name="uploads/today/{name}"][data-state="done"]').wait_for(
                        timeout=60_000
                    )
                page.get_by_role("button", name="Refresh").click()
                page.locator('tr.folder[data-folder="uploads/"]').wait_for()
                page.screenshot(path=str(out), full_page=True)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=15)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "browser.png")
