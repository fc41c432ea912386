"""Uploads through the page in real Chromium: MD5 in a worker, tus, the server's verdict.

Every upload is checked from outside the browser (``updl get`` or the SDK, which verify the
MD5 themselves), and mismatches are made honestly: Playwright rewrites the ``md5`` the page
declared on its way to the server, so the page computes right and the server must refuse.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import requests

import updl
from tests.support.api import Api
from tests.support.browser import MIB, UPLOAD_TIMEOUT_MS, sign_in
from tests.support.files import md5_hex
from tests.support.interop import flipped, same_bytes
from tests.support.live_server import LiveServer

BIG = 30 * MIB + 7  # four 8 MiB PATCHes, the last one short
CHUNK = 8 * MIB  # the page's chunk size (upload.js)


def upload_row(page: Any, name: str) -> Any:
    """The upload list's row for server name ``name``."""
    return page.locator(f'li.upload[data-name="{name}"]')


def choose(page: Any, *paths: Path) -> None:
    """Choose files with the page's "Choose files…" button (its file chooser)."""
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Choose files…").click()
    chooser.value.set_files([str(p) for p in paths])


def wait_state(page: Any, name: str, state: str, timeout: int = UPLOAD_TIMEOUT_MS) -> Any:
    """Wait until the row of ``name`` reaches ``state`` (done, failed); the row."""
    row = upload_row(page, name)
    row.and_(page.locator(f'[data-state="{state}"]')).wait_for(timeout=timeout)
    return row


def test_30mb_upload_arrives_with_the_right_md5(
    signed_in: Any, live_server: LiveServer, token: str, pattern, run_updl, tmp_path: Path
) -> None:
    source = pattern("big.bin", BIG)
    signed_in.get_by_label("Folder on the server (optional)").fill("builds/42")
    choose(signed_in, source)
    row = wait_state(signed_in, "builds/42/big.bin", "done")
    assert row.get_attribute("data-md5") == md5_hex(source)
    assert md5_hex(source) in row.inner_text()
    assert "verified by the server" in row.inner_text()
    assert row.get_attribute("data-sent-bytes") == str(BIG)
    # The MD5 came from a Web Worker, off the page's thread.
    assert signed_in.log.workers == [live_server.url + "/web/md5-worker.js"]
    # One creation and four PATCHes: the page reads the file once more to send it, no retry.
    assert len(signed_in.log.tus("POST")) == 1
    assert len(signed_in.log.tus("PATCH")) == 4
    result = run_updl(live_server, token, "get", "builds/42/big.bin", "-o", str(tmp_path / "copy.bin"))
    assert result.returncode == 0, result.stderr
    assert same_bytes(tmp_path / "copy.bin", source)
    # The listing shows it once the upload is stored.
    signed_in.get_by_role("button", name="Open folder builds/").click()
    signed_in.get_by_role("button", name="Open folder builds/42/").click()
    listed = signed_in.locator('tr.file[data-name="builds/42/big.bin"]')
    assert listed.get_attribute("data-md5") == md5_hex(source)


def test_several_files_and_a_folder(
    signed_in: Any, live_server: LiveServer, token: str, pattern, tmp_path: Path
) -> None:
    one, two = pattern("one.txt", 1000), pattern("two.bin", 3 * MIB)
    empty = pattern("empty.txt", 0)
    choose(signed_in, one, two, empty)
    folder = tmp_path / "tree"
    for rel in ("a/x.bin", "a/b/y.bin"):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(rel.encode() * 1000)
    with signed_in.expect_file_chooser() as chooser:
        signed_in.get_by_role("button", name="Choose a folder…").click()
    chooser.value.set_files(str(folder))
    for name in ("one.txt", "two.bin", "empty.txt", "tree/a/x.bin", "tree/a/b/y.bin"):
        wait_state(signed_in, name, "done")
    api = Api(live_server.url, token)
    assert api.names() == ["empty.txt", "one.txt", "tree/a/b/y.bin", "tree/a/x.bin", "two.bin"]
    with updl.Client(live_server.url, token) as client:
        assert client.info("two.bin").md5 == md5_hex(two)
        assert client.info("tree/a/b/y.bin").md5 == md5_hex(folder / "a/b/y.bin")


def test_reload_mid_upload_then_the_same_file_resumes(page: Any, live_server: LiveServer, token: str, pattern) -> None:
    source = pattern("resume.bin", BIG)
    sign_in(page, live_server.url, token)
    # Hold the third PATCH: the server has two chunks, the page is mid-upload.
    held: list[Any] = []

    def hold_third_patch(route: Any) -> None:
        request = route.request
        if request.method == "PATCH" and request.headers.get("upload-offset") == str(2 * CHUNK):
            held.append(route)
            return
        route.continue_()

    page.route("**/tus/**", hold_third_patch)
    with page.expect_request(
        lambda r: r.method == "PATCH" and r.headers.get("upload-offset") == str(2 * CHUNK), timeout=UPLOAD_TIMEOUT_MS
    ) as third:
        choose(page, source)
    upload_url = third.value.url
    head = requests.head(upload_url, headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}, timeout=30)
    assert head.status_code == 200
    assert int(head.headers["Upload-Offset"]) == 2 * CHUNK  # above zero before the reload

    page.reload()  # while the third PATCH is held: the reload cancels it unsent
    page.unroute_all(behavior="ignoreErrors")
    page.locator("#app").wait_for(state="visible")  # still signed in: the tab's session
    # The page says what can resume, before anything is chosen.
    assert page.locator('#unfinished-list li[data-name="resume.bin"]').is_visible()
    before = len(page.log.requests)
    choose(page, source)
    row = wait_state(page, "resume.bin", "done")
    assert row.get_attribute("data-resumed-from") == str(2 * CHUNK)
    assert "resumed" in row.inner_text()
    page.locator("#unfinished").wait_for(state="hidden")  # nothing left to resume
    after = page.log.requests[before:]
    patches = [r for r in after if r.method == "PATCH"]
    assert [r.url for r in after if r.method == "POST" and "/tus/" in r.url] == []  # no new upload
    assert [r.url for r in patches] == [upload_url, upload_url]
    assert [int(r.headers["upload-offset"]) for r in patches] == [2 * CHUNK, 3 * CHUNK]
    # Fewer bytes sent: 30 MB less the two chunks the server kept.
    # (what the server acknowledged to the page; the PATCH offsets above say the same)
    assert row.get_attribute("data-sent-bytes") == str(BIG - 2 * CHUNK)
    with updl.Client(live_server.url, token) as client:
        assert client.info("resume.bin").md5 == md5_hex(source)


def wrong_md5_on_the_wire(page: Any, times: int) -> list[str]:
    """Rewrite the ``md5`` of the page's next ``times`` tus creations to a wrong one.

    The page computed the right MD5; what reaches the server is what a corrupting network or
    a file changed after hashing would produce. Returns the MD5s the page declared.
    """
    declared: list[str] = []

    def corrupt(route: Any) -> None:
        request = route.request
        if request.method != "POST" or len(declared) >= times:
            route.continue_()
            return
        pairs = dict(item.split(" ") for item in request.headers["upload-metadata"].split(","))
        md5 = base64.b64decode(pairs["md5"]).decode()
        declared.append(md5)
        pairs["md5"] = base64.b64encode(flipped(md5).encode()).decode()
        metadata = ",".join(f"{k} {v}" for k, v in pairs.items())
        route.continue_(headers={**request.headers, "upload-metadata": metadata})

    page.route("**/tus/", corrupt)
    return declared


def test_md5_mismatch_is_refused_retried_and_never_stored(
    signed_in: Any, live_server: LiveServer, token: str, pattern
) -> None:
    source = pattern("mismatch.bin", 3 * MIB + 1)
    declared = wrong_md5_on_the_wire(signed_in, times=100)
    choose(signed_in, source)
    row = wait_state(signed_in, "mismatch.bin", "failed")
    assert declared == [md5_hex(source)] * 3  # three attempts, each hashing the file again
    assert row.get_attribute("data-mismatches") == "3"
    assert "Nothing was stored" in row.inner_text()
    # Each attempt's last PATCH got the 409, and its upload is gone with its bytes.
    assert len(signed_in.log.tus("POST")) == 3
    assert Api(live_server.url, token).names() == []
    assert signed_in.locator("#unfinished").is_hidden()  # no dead upload offered for resuming
    for url in {r.url for r in signed_in.log.tus("PATCH")}:
        head = requests.head(url, headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}, timeout=30)
        assert head.status_code == 404


def test_one_mismatch_then_the_retry_is_stored(signed_in: Any, live_server: LiveServer, token: str, pattern) -> None:
    source = pattern("once.bin", 2 * MIB + 3)
    declared = wrong_md5_on_the_wire(signed_in, times=1)
    choose(signed_in, source)
    row = wait_state(signed_in, "once.bin", "done")
    assert declared == [md5_hex(source)]
    assert row.get_attribute("data-mismatches") == "1"
    assert len(signed_in.log.tus("POST")) == 2
    with updl.Client(live_server.url, token) as client:
        assert client.info("once.bin").md5 == md5_hex(source)


def test_cancel_keeps_the_upload_resumable(page: Any, live_server: LiveServer, token: str, pattern) -> None:
    source = pattern("cancel.bin", 2 * CHUNK + 5)
    sign_in(page, live_server.url, token)

    # Hold the second PATCH: the server has one chunk, the upload is in progress.
    def hold_second_patch(route: Any) -> None:
        request = route.request
        if request.method == "PATCH" and request.headers.get("upload-offset") == str(CHUNK):
            return  # never answered: the page's cancel ends it
        route.continue_()

    page.route("**/tus/**", hold_second_patch)
    with page.expect_request(
        lambda r: r.method == "PATCH" and r.headers.get("upload-offset") == str(CHUNK), timeout=UPLOAD_TIMEOUT_MS
    ) as second:
        choose(page, source)
    upload_url = second.value.url
    # The Cancel button is labelled and works from the keyboard.
    cancel = page.get_by_role("button", name="Cancel the upload of cancel.bin")
    cancel.focus()
    page.keyboard.press("Enter")
    row = wait_state(page, "cancel.bin", "cancelled")
    assert "The server keeps the 8.0 MiB it received" in row.inner_text()
    assert "choose the same file again" in row.inner_text()
    assert cancel.is_hidden()
    # Not terminated: the server still has the upload, at the offset it reached.
    assert page.log.tus("DELETE") == []
    head = requests.head(upload_url, headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}, timeout=30)
    assert head.status_code == 200 and int(head.headers["Upload-Offset"]) == CHUNK
    assert page.locator('#unfinished-list li[data-name="cancel.bin"]').is_visible()
    assert Api(live_server.url, token).names() == []

    # Choosing the file again resumes it (a new row; the cancelled one stays as it was).
    page.unroute_all(behavior="ignoreErrors")
    before = len(page.log.requests)
    choose(page, source)
    wait_state(page, "cancel.bin", "done")
    row = upload_row(page, "cancel.bin").first  # the newest row comes first
    assert row.get_attribute("data-resumed-from") == str(CHUNK)
    after = page.log.requests[before:]
    assert [r.url for r in after if r.method == "POST" and "/tus/" in r.url] == []
    patches = [r for r in after if r.method == "PATCH"]
    assert [int(r.headers["upload-offset"]) for r in patches] == [CHUNK, 2 * CHUNK]
    assert {r.url for r in patches} == {upload_url}
    page.locator("#unfinished").wait_for(state="hidden")
    with updl.Client(live_server.url, token) as client:
        assert client.info("cancel.bin").md5 == md5_hex(source)


def test_cancel_while_hashing_sends_nothing(page: Any, live_server: LiveServer, token: str, pattern) -> None:
    source = pattern("early.bin", 1000)
    sign_in(page, live_server.url, token)
    page.route("**/web/md5-worker.js", lambda route: None)  # the worker never starts hashing
    with page.expect_request("**/web/md5-worker.js"):
        choose(page, source)
    page.get_by_role("button", name="Cancel the upload of early.bin").click()
    row = wait_state(page, "early.bin", "cancelled")
    assert "Choose the same file again" in row.inner_text()
    assert page.log.tus("POST") == [] and page.log.tus("PATCH") == []
    assert page.locator("#unfinished").is_hidden()
    # Choosing it again uploads it.
    page.unroute_all(behavior="ignoreErrors")
    choose(page, source)
    wait_state(page, "early.bin", "done")
    assert Api(live_server.url, token).names() == ["early.bin"]
