"""Resumable, verified downloads to a path: ``NAME.part`` beside the destination.

The ``.part`` file is held under an exclusive ``flock`` for the whole
download, so two downloads to one destination never write into each other
(the second fails at once). A rerun, or a retry after the connection broke,
continues with ``Range: bytes=<size of .part>-`` and ``If-Range: <ETag the
.part's bytes came from>`` (remembered in the :mod:`~updl.sdk.resume`
store); when the file changed on the server the answer is the whole file
(200) and the ``.part`` starts over from 0. The MD5 is of the whole file on
disk — the existing prefix is hashed from disk first, then the new bytes as
they arrive — and is checked before the rename; on a mismatch the ``.part``
is emptied (never reused) and the next attempt starts from 0.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import fcntl
import hashlib
import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, cast

import requests

from .errors import BadRequestError, ChecksumMismatchError, ConnectionFailedError, UpdlError
from .hashing import CHUNK_SIZE, HashingWriter
from .models import FileInfo
from .progress import ProgressCallback, ProgressEvent
from .resume import ResumeStore
from .transport import translate

__all__ = ["PartFile", "ResumableDownload", "expected_md5", "header_time"]

OpenBody = Callable[[dict[str, str]], requests.Response]


def expected_md5(response: requests.Response) -> str | None:
    """The server's MD5 of the file: ``Content-MD5`` (base64) or else a strong ``ETag`` (hex).

    After a redirect (a server that sends downloads to presigned storage URLs)
    the updl server's own answer is asked first: a store's ETag is not the MD5
    of a multipart object.
    """
    for answer in (*response.history[:1], response):
        md5 = _md5_from_headers(answer)
        if md5 is not None:
            return md5
    return None


def server_etag(response: requests.Response) -> str | None:
    """The updl server's ``ETag`` (the first answer of a redirect chain), for ``If-Range``."""
    return (response.history[0] if response.history else response).headers.get("ETag")


def _md5_from_headers(response: requests.Response) -> str | None:
    content_md5 = response.headers.get("Content-MD5")
    if content_md5:
        try:
            digest = base64.b64decode(content_md5, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) == 16:
            return digest.hex()
    etag = response.headers.get("ETag", "")
    if etag and not etag.startswith("W/"):
        value = etag.strip('"').lower()
        if len(value) == 32 and all(c in "0123456789abcdef" for c in value):
            return value
    return None


def header_time(value: str | None) -> datetime | None:
    """An HTTP date header as an aware datetime, or ``None``."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def receive_body(response: requests.Response, writer: HashingWriter) -> None:
    """Stream the response body through ``writer`` and wait until it is all hashed and written.

    Network failures become updl errors; the writer is closed either way.
    """
    try:
        for chunk in response.iter_content(CHUNK_SIZE):
            writer.write(chunk)
    except requests.RequestException as exc:
        raise translate(exc) from exc
    finally:
        writer.close()


class PartFile:
    """``<target>.part``, opened read-write and exclusively ``flock``ed until :meth:`close`."""

    def __init__(self, target: Path) -> None:
        """Open (creating, under the umask) and lock; ``UpdlError`` if another download holds it."""
        self.path = target.with_name(target.name + ".part")
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UpdlError(f"another download to {target} is in progress "
                                f"({self.path} is locked); wait for it to finish") from None
            try:
                current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                break
            os.close(fd)  # the previous holder renamed or removed it in between: open the new one
        self.file = os.fdopen(fd, "r+b")
        self.done = False

    def size(self) -> int:
        """Bytes on disk (after flushing what is buffered)."""
        self.file.flush()
        return os.fstat(self.file.fileno()).st_size

    def restart(self) -> None:
        """Empty the file: its bytes are not to be reused."""
        self.file.seek(0)
        self.file.truncate()

    def prefix_md5(self, length: int) -> Any:
        """MD5 of the first ``length`` bytes, read from disk; leaves the position at ``length``."""
        digest = hashlib.md5()
        self.file.seek(0)
        remaining = length
        while remaining > 0 and (chunk := self.file.read(min(CHUNK_SIZE, remaining))):
            digest.update(chunk)
            remaining -= len(chunk)
        self.file.seek(length)
        return digest

    def finish(self, target: Path) -> None:
        """fsync and rename into place (still locked, so no one else touches it meanwhile)."""
        self.file.flush()
        os.fsync(self.file.fileno())
        os.replace(self.path, target)
        self.done = True

    def close(self) -> None:
        """Release the lock; an empty ``.part`` left by a failure is removed."""
        if not self.done and self.size() == 0:
            self.path.unlink(missing_ok=True)
        self.file.close()


class ResumableDownload:
    """Attempts at downloading ``name`` into ``target`` through ``part``; call :meth:`run` per attempt."""

    def __init__(self, server: str, name: str, target: Path, part: PartFile, store: ResumeStore,
                 open_body: OpenBody, report: ProgressCallback) -> None:
        """``open_body(headers)`` sends the GET and returns the streaming response."""
        self._server = server
        self._name = name
        self._target = target
        self._part = part
        self._store = store
        self._open_body = open_body
        self._report = report

    def run(self, attempt: int) -> FileInfo:
        """Continue (or start) the download, verify the whole file, rename it into place."""
        part = self._part
        offset = part.size()
        etag = self._store.download_etag(part.path, self._server, self._name) if offset else None
        if offset and etag is None:
            part.restart()  # nothing proves which version these bytes belong to
            offset = 0
        try:
            response = self._open_body({"Range": f"bytes={offset}-", "If-Range": etag}
                                       if offset and etag else {})
        except BadRequestError as exc:
            if exc.status != 416:
                raise
            part.restart()  # the .part is not shorter than the file: start over
            offset = 0
            response = self._open_body({})
        with response:
            return self._receive(response, offset, attempt)

    def _receive(self, response: requests.Response, offset: int, attempt: int) -> FileInfo:
        part = self._part
        total = _total(response)
        if response.status_code == 206:
            start = response.headers.get("Content-Range", "").partition(" ")[2].partition("-")[0]
            if start != str(offset):
                part.restart()
                raise ConnectionFailedError(f"{self._name}: the server sent an unexpected range "
                                            f"({response.headers.get('Content-Range')})")
        elif offset:
            part.restart()  # 200: the file changed since the .part was written
            offset = 0
        md5 = expected_md5(response)
        if md5 is None:
            raise UpdlError(f"{self._name}: the server sent neither Content-MD5 nor ETag; "
                            "cannot verify the download", response=response)
        etag = server_etag(response)
        if etag:
            self._store.remember_download(part.path, self._server, self._name, etag)
        digest = part.prefix_md5(offset)

        def on_write(position: int) -> None:
            self._report(ProgressEvent(self._name, offset + position, total, attempt))

        writer = HashingWriter(cast(BinaryIO, part.file), on_write, digest)
        self._report(ProgressEvent(self._name, offset, total, attempt))
        try:
            receive_body(response, writer)
        finally:
            part.file.flush()  # what arrived stays for the next attempt
        size = offset + writer.bytes_written
        if total is not None and size != total:
            raise ConnectionFailedError(
                f"the download of {self._name} stopped after {size} of {total} bytes",
                response=response)
        actual = writer.hexdigest()
        if actual != md5:
            part.restart()
            self._store.forget_download(part.path)
            raise ChecksumMismatchError(f"checksum mismatch (server: {md5}, received: {actual})",
                                        expected=md5, actual=actual, response=response)
        part.finish(self._target)
        self._store.forget_download(part.path)
        return FileInfo(
            name=self._name, size=size, md5=actual,
            created=header_time(response.headers.get("Last-Modified")) or datetime.now(timezone.utc),
            last_accessed=header_time(response.headers.get("Date")),
        )


def _total(response: requests.Response) -> int | None:
    """The whole file's size: from ``Content-Range`` on a 206, else ``Content-Length``."""
    if response.status_code == 206:
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
    else:
        total = response.headers.get("Content-Length", "")
    return int(total) if total.isdigit() else None
