"""A local file that changes while it is being uploaded is never stored: not torn, not "verified".

The server only sees the MD5 of the bytes the client read, which matches what
was sent even when the file was rewritten half-way; so the client itself must
notice the change (size, mtime, ctime of the open file before the first and
after the last byte) and abort the body. Each test changes the file from the
progress callback, i.e. while the upload is reading it: no threads, no sleeps.
The file's mtime is first set far in the past, so the change is visible
whatever the file system's timestamp granularity.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import updl
from tests.support.files import md5_hex
from tests.support.live_server import LiveServer
from updl.sdk.batch_upload import plan_uploads, upload_batch
from updl.sdk.config import load_settings
from updl.sdk.selection import select_files

SIZE = 1024 * 1024 + 123
OLD = 1_000_000_000 * 10**9  # 2001-09-09, in ns
FLIP = bytes(b ^ 0xFF for b in range(256))


def rewrite(path: Path) -> None:
    """Every byte flipped, same size, in place (same inode), as an editor or a build step might."""
    data = path.read_bytes()
    with path.open("r+b") as f:
        f.write(data.translate(FLIP))


def grow(path: Path) -> None:
    with path.open("ab") as f:
        f.write(b"more")


def shrink(path: Path) -> None:
    os.truncate(path, SIZE // 2)


CHANGES = {"rewritten": rewrite, "grown": grow, "shrunk": shrink}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "artifact.bin"
    path.write_bytes(bytes(range(256)) * (SIZE // 256) + b"x" * (SIZE % 256))
    os.utime(path, ns=(OLD, OLD))
    return path


def change_once(path: Path, change: Callable[[Path], None]) -> Callable[[updl.ProgressEvent], None]:
    """A progress callback that applies ``change`` to ``path`` once, after the first bytes were read."""
    done = [False]

    def on_progress(event: updl.ProgressEvent) -> None:
        if event.transferred > 0 and not done[0]:
            done[0] = True
            change(path)

    return on_progress


@pytest.fixture
def client(live_server: LiveServer, token: str) -> Iterator[updl.Client]:
    with updl.Client(live_server.url, token, retry=updl.RetryPolicy(retries=0), sleep=lambda _s: None) as made:
        yield made


@pytest.mark.parametrize("change", CHANGES)
def test_multipart_upload_of_a_changing_file_is_refused_and_nothing_stored(
    client: updl.Client, source: Path, change: str
) -> None:
    with pytest.raises(updl.SourceChangedError, match="changed while"):
        client.upload(source, "changing.bin", on_progress=change_once(source, CHANGES[change]))
    with pytest.raises(updl.NotFoundError):
        client.info("changing.bin")


def test_a_changing_file_leaves_the_previous_version_untouched(client: updl.Client, source: Path) -> None:
    before = client.upload(source, "kept.bin")
    os.utime(source, ns=(OLD, OLD))
    with pytest.raises(updl.SourceChangedError):
        # Not by content: the server holds these bytes, so they would be linked, not read and sent.
        client.upload(source, "kept.bin", on_progress=change_once(source, rewrite), dedup=False)
    assert client.info("kept.bin").md5 == before.md5


def test_an_open_file_object_that_changes_is_refused_too(client: updl.Client, source: Path) -> None:
    with source.open("rb") as f, pytest.raises(updl.SourceChangedError):
        client.upload(f, "object.bin", on_progress=change_once(source, rewrite))
    with pytest.raises(updl.NotFoundError):
        client.info("object.bin")


def test_a_retry_rereads_the_file_and_stores_its_new_content(
    live_server: LiveServer, token: str, source: Path, tmp_path: Path
) -> None:
    retried: list[updl.RetryEvent] = []
    with updl.Client(live_server.url, token, retry=updl.RetryPolicy(retries=1), sleep=lambda _s: None) as c:
        info = c.upload(source, "retried.bin", on_progress=change_once(source, rewrite), on_retry=retried.append)
        c.download("retried.bin", tmp_path / "back.bin")
    assert [type(e.error) for e in retried] == [updl.SourceChangedError]
    assert info.md5 == md5_hex(source) == md5_hex(tmp_path / "back.bin")


@pytest.mark.parametrize("retries", [0, 1])
def test_resumable_upload_of_a_changing_file(
    live_server: LiveServer, token: str, source: Path, tmp_path: Path, retries: int
) -> None:
    """tus: refused before the last PATCH; a retry starts a new upload of the new content."""
    settings = dataclasses.replace(
        load_settings(live_server.url, token), resumable_threshold=0, resumable_chunk_size=256 * 1024
    )
    with updl.Client(settings=settings, retry=updl.RetryPolicy(retries=retries), sleep=lambda _s: None) as c:

        def upload() -> updl.FileInfo:
            return c.upload(source, "tus.bin", on_progress=change_once(source, rewrite))

        if retries == 0:
            with pytest.raises(updl.SourceChangedError):
                upload()
            with pytest.raises(updl.NotFoundError):
                c.info("tus.bin")
            return
        info = upload()
        c.download("tus.bin", tmp_path / "back.bin")
    assert info.md5 == md5_hex(source) == md5_hex(tmp_path / "back.bin")


def test_a_batch_hashing_for_a_manifest_refuses_a_changing_file(client: updl.Client, source: Path) -> None:
    """The SHA-256 for a manifest wraps the file in another reader: the check must see through it."""
    tasks = plan_uploads(select_files([str(source)]), "batch")
    [outcome] = upload_batch(client, tasks, algorithms=("sha256",), on_progress=change_once(source, rewrite))
    assert outcome.status == "failed" and isinstance(outcome.error, updl.SourceChangedError)
    with pytest.raises(updl.NotFoundError):
        client.info("batch/artifact.bin")
