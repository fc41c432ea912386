"""Downloads through the page in real Chromium: streamed into the chosen file, committed only
once the MD5 matched; held in memory only where the browser offers nothing else, and bounded.

Chromium's save dialog is replaced by a stand-in that picks a file in the Origin Private File
System (``OPFS_PICKER``), whose writable streams behave as a real file's: what is written
stays in a swap file until ``close()``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import updl
from tests.support.browser import MIB, NO_PICKER, OPFS_PICKER, opfs_files, sign_in
from tests.support.files import md5_hex
from tests.support.live_server import LiveServer

SIZE = 20 * MIB + 3


def store(live_server: LiveServer, token: str, source: Path, name: str) -> None:
    """Upload ``source`` as ``name`` with the SDK."""
    with updl.Client(live_server.url, token) as client:
        client.upload(source, name)


def download(page: Any, name: str, expect: str) -> str:
    """Click the page's Download button for ``name``; wait for ``expect`` in its status."""
    page.get_by_role("button", name=f"Download {name}").click()
    status = page.locator("#browse-status")
    status.filter(has_text=expect).wait_for()
    return status.inner_text()


def test_a_download_streams_into_the_chosen_file(page: Any, live_server: LiveServer, token: str, pattern) -> None:
    source = pattern("big.bin", SIZE)
    store(live_server, token, source, "data/big.bin")
    page.add_init_script(OPFS_PICKER)
    fallback: list[Any] = []
    page.on("download", lambda d: fallback.append(d))
    sign_in(page, live_server.url, token)
    page.get_by_role("button", name="Open folder data/").click()
    text = download(page, "data/big.bin", "verified")
    assert md5_hex(source) in text
    assert page.evaluate("window.picked") == ["big.bin"]
    assert opfs_files(page) == {"big.bin": {"size": SIZE, "md5": md5_hex(source)}}
    # Chunk by chunk, never the whole file at once (and no in-memory download link).
    sizes = page.evaluate("window.writeSizes")
    assert sum(sizes) == SIZE and len(sizes) > 10 and max(sizes) <= 4 * MIB
    assert fallback == []


@pytest.mark.parametrize("fault", ["flipped-bytes", "network-error"])
def test_a_damaged_download_leaves_no_file(page: Any, live_server: LiveServer, token: str, pattern, fault: str) -> None:
    source = pattern("damaged.bin", 3 * MIB + 1)
    store(live_server, token, source, "damaged.bin")
    page.add_init_script(OPFS_PICKER)
    sign_in(page, live_server.url, token)

    def corrupt(route: Any) -> None:
        if fault == "network-error":
            route.abort("connectionreset")
            return
        answer = route.fetch()  # the server's real answer: its headers (ETag) kept
        body = bytearray(answer.body())
        body[len(body) // 2] ^= 0xFF  # one byte, mid-file: the size is right, the MD5 is not
        route.fulfill(response=answer, body=bytes(body))

    page.route("**/files/damaged.bin", corrupt)
    expect = "arrived damaged" if fault == "flipped-bytes" else "cannot reach the server"
    text = download(page, "damaged.bin", expect)
    assert "Cannot download damaged.bin" in text
    if fault == "flipped-bytes":
        assert md5_hex(source) in text and "nothing was saved" in text
    assert page.evaluate("window.picked") == ["damaged.bin"]
    # Aborted, not committed; the empty file the dialog created is removed too.
    assert opfs_files(page) == {}


def test_without_a_save_dialog_a_large_file_is_refused(page: Any, live_server: LiveServer, token: str, pattern) -> None:
    source = pattern("huge.bin", 1000)
    store(live_server, token, source, "huge.bin")
    page.add_init_script(NO_PICKER)

    # The listing says the file is 600 MiB: storing one for real would only slow the test.
    def bigger(route: Any) -> None:
        answer = route.fetch()
        listing = answer.json()
        for info in listing["files"]:
            info["size"] = 600 * MIB
        route.fulfill(response=answer, body=json.dumps(listing))

    page.route("**/files?*", bigger)
    sign_in(page, live_server.url, token)
    text = download(page, "huge.bin", "in memory")
    assert "Cannot download huge.bin: it is 600.0 MiB" in text
    assert "up to 512.0 MiB" in text and "updl get huge.bin" in text
    assert [r for r in page.log.requests if r.url.endswith("/files/huge.bin")] == []


def test_without_a_save_dialog_a_small_file_is_checked_in_memory(
    page: Any, context: Any, live_server: LiveServer, token: str, pattern, tmp_path: Path
) -> None:
    source = pattern("small.bin", 2 * MIB + 5)
    store(live_server, token, source, "small.bin")
    page.add_init_script(NO_PICKER)
    sign_in(page, live_server.url, token)
    with page.expect_download() as saved:
        text = download(page, "small.bin", "verified")
    assert md5_hex(source) in text
    saved.value.save_as(tmp_path / "copy.bin")
    assert md5_hex(tmp_path / "copy.bin") == md5_hex(source)
