"""The page's other features in real Chromium: signing in, browsing, downloading, deleting,
verifying a local file; keyboard and phone width."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

import updl
from tests.support.api import Api
from tests.support.browser import sign_in
from tests.support.live_server import LiveServer


def store(live_server: LiveServer, token: str, files: dict[str, bytes], tmp_path: Path) -> None:
    """Upload ``files`` (name → content) with the SDK."""
    with updl.Client(live_server.url, token) as client:
        for name, content in files.items():
            path = tmp_path / "store" / hashlib.md5(name.encode()).hexdigest()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            client.upload(path, name)


@pytest.mark.parametrize("wrong", ["updl_0123456789abcdef_" + "x" * 43, "not a token"], ids=["unknown", "malformed"])
def test_a_wrong_token_is_reported(page: Any, live_server: LiveServer, wrong: str) -> None:
    page.goto(live_server.url + "/")
    page.get_by_label("Token").fill(wrong)
    page.get_by_role("button", name="Sign in").click()
    status = page.locator("#signin-status")
    status.filter(has_text="Wrong token").wait_for()
    assert "the server refused it" in status.inner_text()
    assert page.locator("#app").is_hidden()
    assert page.evaluate("sessionStorage.length") == 0


def test_the_token_stays_in_the_tab_only(page: Any, live_server: LiveServer, token: str) -> None:
    sign_in(page, live_server.url, token)
    assert page.evaluate("sessionStorage.getItem('updl.token')") == token
    assert page.evaluate("JSON.stringify(localStorage)").find(token) == -1
    assert page.context.cookies() == []
    assert token not in page.url
    # Signing out forgets it.
    page.get_by_role("button", name="Sign out").click()
    page.locator("#signin").wait_for(state="visible")
    assert page.evaluate("sessionStorage.getItem('updl.token')") is None


def test_browse_folders_download_and_delete(
    signed_in: Any, live_server: LiveServer, token: str, tmp_path: Path
) -> None:
    files = {"docs/a.txt": b"alpha\n" * 100, "docs/b.txt": b"bravo\n", "docs/sub/c.txt": b"c", "top.txt": b"top"}
    store(live_server, token, files, tmp_path)
    page = signed_in
    page.get_by_role("button", name="Refresh").click()
    page.locator('tr.folder[data-folder="docs/"]').wait_for()
    assert page.locator('tr.file[data-name="top.txt"]').count() == 1
    page.get_by_role("button", name="Open folder docs/").click()
    page.locator('tr.file[data-name="docs/a.txt"]').wait_for()
    names = page.locator("tr.file").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert names == ["docs/a.txt", "docs/b.txt"]
    assert page.locator('tr.folder[data-folder="docs/sub/"]').count() == 1
    row = page.locator('tr.file[data-name="docs/a.txt"]')
    assert row.locator("td.size").get_attribute("title") == "600 bytes"
    assert row.locator("td.md5").inner_text() == hashlib.md5(files["docs/a.txt"]).hexdigest()
    assert row.locator("td.time").get_attribute("title").endswith("Z")

    # Without a save dialog (as in Firefox): checked in memory, saved by a download link.
    # (Chromium's streamed path, through its save dialog, is in test_download.py.)
    page.evaluate("delete window.showSaveFilePicker")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download docs/a.txt").click()
    assert download.value.suggested_filename == "a.txt"
    saved = tmp_path / "a.txt"
    download.value.save_as(saved)
    assert saved.read_bytes() == files["docs/a.txt"]
    page.locator("#browse-status").filter(has_text="verified").wait_for()

    # Delete asks first; "Cancel" keeps the file, "Delete" removes it.
    page.get_by_role("button", name="Delete docs/b.txt").click()
    dialog = page.get_by_role("dialog")
    assert dialog.locator("#confirm-name").inner_text() == "docs/b.txt"
    dialog.get_by_role("button", name="Cancel").click()
    assert Api(live_server.url, token).names("docs/") == ["docs/a.txt", "docs/b.txt", "docs/sub/c.txt"]
    page.get_by_role("button", name="Delete docs/b.txt").click()
    dialog.get_by_role("button", name="Delete").click()
    page.locator('tr.file[data-name="docs/b.txt"]').wait_for(state="detached")
    assert Api(live_server.url, token).names("docs/") == ["docs/a.txt", "docs/sub/c.txt"]
    # Back to the top through the breadcrumbs.
    page.get_by_role("button", name="All files").click()
    page.locator('tr.file[data-name="top.txt"]').wait_for()


def test_paging(signed_in: Any, live_server: LiveServer, token: str, tmp_path: Path) -> None:
    store(live_server, token, {f"many/f{i:02d}": b"x" for i in range(27)}, tmp_path)
    page = signed_in
    page.get_by_label("Per page").select_option("25")
    page.get_by_role("button", name="Open folder many/").click()
    page.locator('tr.file[data-name="many/f24"]').wait_for()
    assert page.locator("tr.file").count() == 25
    page.get_by_role("button", name="Next page").click()
    page.locator('tr.file[data-name="many/f26"]').wait_for()
    names = page.locator("tr.file").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert names == ["many/f25", "many/f26"]
    assert page.get_by_role("button", name="Next page").is_disabled()
    page.get_by_role("button", name="Previous page").click()
    page.locator('tr.file[data-name="many/f00"]').wait_for()
    assert page.locator("tr.file").count() == 25


def test_a_folder_bigger_than_a_page_is_one_row(
    signed_in: Any, live_server: LiveServer, token: str, tmp_path: Path
) -> None:
    """The server rolls a folder up: 30 names below big/ are one row, and the file after
    them is on the same first page (folders are complete, not those of one page of names)."""
    store(live_server, token, {**{f"big/f{i:02d}": b"x" for i in range(30)}, "late.txt": b"l"}, tmp_path)
    page = signed_in
    page.get_by_label("Per page").select_option("25")
    page.locator('tr.file[data-name="late.txt"]').wait_for()
    assert page.locator("tr.folder").evaluate_all("rows => rows.map(r => r.dataset.folder)") == ["big/"]
    assert page.locator("#browse-status").inner_text() == "1 file and 1 folder on this page."
    assert page.get_by_role("button", name="Next page").is_disabled()


def test_verify_a_local_file(signed_in: Any, live_server: LiveServer, token: str, tmp_path: Path) -> None:
    store(live_server, token, {"check/data.bin": b"the server's copy" * 1000}, tmp_path)
    same, other = tmp_path / "same" / "data.bin", tmp_path / "other" / "data.bin"
    for path, content in ((same, b"the server's copy" * 1000), (other, b"changed" * 1000)):
        path.parent.mkdir()
        path.write_bytes(content)
    page = signed_in
    status = page.locator("#verify-status")

    def verify(path: Path, expect: str) -> str:
        with page.expect_file_chooser() as chooser:
            page.get_by_role("button", name="Choose a file…").click()
        chooser.value.set_files(str(path))
        status.filter(has_text=expect).wait_for()
        return status.inner_text()

    page.get_by_label("Server file to compare with (optional)").fill("check/data.bin")
    assert hashlib.md5(same.read_bytes()).hexdigest() in verify(same, "Match")
    text = verify(other, "Different")
    assert hashlib.md5(other.read_bytes()).hexdigest() in text
    # Empty: the file of the same name in the folder shown.
    page.get_by_label("Server file to compare with (optional)").fill("")
    verify(same, "There is no file named data.bin")
    page.get_by_role("button", name="Refresh").click()
    page.get_by_role("button", name="Open folder check/").click()
    page.locator('tr.file[data-name="check/data.bin"]').wait_for()
    verify(same, "Match")
    # A file dropped on the zone is checked the same way.
    handle = page.evaluate_handle(
        "(text) => { const dt = new DataTransfer(); dt.items.add(new File([text], 'data.bin')); return dt; }",
        "changed" * 1000,
    )
    page.dispatch_event("#verify-drop", "drop", {"dataTransfer": handle})
    status.filter(has_text="Different").wait_for()


def test_drop_files_on_the_upload_zone(signed_in: Any, live_server: LiveServer, token: str) -> None:
    page = signed_in
    handle = page.evaluate_handle(
        "() => { const dt = new DataTransfer();"
        " dt.items.add(new File(['one'], 'one.txt')); dt.items.add(new File(['two'], 'two.txt'));"
        " return dt; }"
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": handle})
    for name in ("one.txt", "two.txt"):
        page.locator(f'li.upload[data-name="{name}"][data-state="done"]').wait_for()
    assert Api(live_server.url, token).names() == ["one.txt", "two.txt"]


def test_keyboard_and_phone_width(page: Any, live_server: LiveServer, token: str, tmp_path: Path) -> None:
    store(live_server, token, {"phone/" + "long-name-" * 8 + ".bin": b"x"}, tmp_path)
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(live_server.url + "/")
    # Tab reaches the token field first; Enter signs in.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    page.locator("#app").wait_for(state="visible")
    page.get_by_role("button", name="Open folder phone/").focus()
    page.keyboard.press("Enter")
    page.locator("tr.file").wait_for()
    # Every control has a name a screen reader can say.
    unnamed = page.evaluate("""() => [...document.querySelectorAll('button, input, select')]
        .filter(e => !e.hidden && e.type !== 'file')
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                     && !e.textContent.trim())
        .map(e => e.outerHTML)""")
    assert unnamed == []
    # Nothing wider than the phone: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
