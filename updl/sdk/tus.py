"""Resumable uploads of large files over tus 1.0, verified end to end.

**Why the file is read twice.** The server verifies the whole file's MD5
before it commits anything, so it must know the expected digest before the
last byte arrives — and tus has no message after the last PATCH to carry it.
So the client first reads the file to hash it (fast: sequential, and it warms
the page cache for the second read), then creates the upload with that
``md5`` in ``Upload-Metadata``. The second read sends it in chunks
(``Settings.resumable_chunk_size``, 8 MiB by default), each PATCH with an
``Upload-Checksum: md5 ...`` the server checks before counting the bytes (460
otherwise, and that chunk is sent again). The sending pass hashes what it
sends — on resume the already-sent prefix is read once more from disk and
hashed — and the last chunk is sent only if that running MD5 still equals
the declared one (the file did not change in between). Finally the stored
file's ``FileInfo`` must show the same MD5 (else it is deleted and
:class:`ChecksumMismatchError` raised).

**Resuming.** The upload's URL and MD5 go into the :mod:`~updl.sdk.resume`
store keyed by server, name, path, size and mtime, right after creation. A
later run (after Ctrl-C, a network drop, a server restart) asks the server
for the offset (``HEAD``) and continues from there; an entry the server no
longer knows (404/410) or that has expired is forgotten and a new upload made.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

from .errors import (
    BadRequestError,
    ChecksumMismatchError,
    NotFoundError,
    SourceChangedError,
    UpdlError,
    UploadBusyError,
)
from .hashing import CHUNK_SIZE
from .models import FileInfo
from .progress import ProgressCallback, ProgressEvent
from .resume import DEFAULT_UPLOAD_TTL, ResumeStore, UploadEntry, UploadKey
from .transport import Transport, file_path

__all__ = ["TUS_VERSION", "TusUpload"]

TUS_VERSION = "1.0.0"
OFFSET_STREAM = "application/offset+octet-stream"
GONE = (404, 410)
MAX_RESYNCS = 3


class _ChunkBody:
    """One PATCH body: a sized, readable view of ``data`` that reports how much was sent."""

    def __init__(self, data: bytes, on_read: Callable[[int], None]) -> None:
        self._data = memoryview(data)
        self._sent = 0
        self._on_read = on_read

    def __len__(self) -> int:
        return len(self._data) - self._sent

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size is None or size < 0 else min(len(self._data), self._sent + size)
        chunk = bytes(self._data[self._sent:end])
        self._sent = end
        self._on_read(self._sent)
        return chunk


def _md5_file(fileobj: BinaryIO, length: int, digest: Any = None) -> Any:
    """MD5 of the first ``length`` bytes of ``fileobj`` (continuing ``digest`` if given)."""
    digest = digest if digest is not None else hashlib.md5()
    fileobj.seek(0)
    remaining = length
    while remaining > 0:
        chunk = fileobj.read(min(CHUNK_SIZE, remaining))
        if not chunk:
            raise SourceChangedError(f"the file shrank while being read ({length - remaining} "
                                     f"of {length} bytes); upload it again once it is complete")
        digest.update(chunk)
        remaining -= len(chunk)
    return digest


class TusUpload:
    """One attempt at uploading one file resumably; call :meth:`run` per retry attempt."""

    def __init__(self, transport: Transport, store: ResumeStore, path: Path, name: str,
                 chunk_size: int, report: ProgressCallback) -> None:
        """Prepare to upload ``path`` as ``name`` in ``chunk_size`` PATCHes."""
        self._transport = transport
        self._store = store
        self._path = path
        self._name = name
        self._chunk_size = chunk_size
        self._report = report
        self.key = UploadKey.for_file(transport.base_url, name, path)
        self.resumed_from = 0

    def run(self, attempt: int) -> FileInfo:
        """Create or resume the upload, send the rest, verify the stored file."""
        size = self.key.size
        with self._path.open("rb") as fileobj:
            entry, offset = self._resume_or_create(fileobj)
            if attempt == 1:
                self.resumed_from = offset
            self._report(ProgressEvent(self._name, offset, size, attempt))
            sent = _md5_file(fileobj, offset)  # the prefix the server has, hashed from disk
            resyncs = 0
            while offset < size:
                fileobj.seek(offset)
                data = fileobj.read(min(self._chunk_size, size - offset))
                if not data:
                    raise SourceChangedError(f"{self._path} shrank while being uploaded")
                running = sent.copy()
                running.update(data)
                if offset + len(data) == size and running.hexdigest() != entry.md5:
                    self._abandon(entry)
                    raise SourceChangedError(f"{self._path} changed while being uploaded; "
                                             "upload it again once it is complete")
                try:
                    offset = self._patch(entry, offset, data, attempt)
                except BadRequestError as exc:
                    if exc.status != 409 or resyncs >= MAX_RESYNCS:
                        raise
                    resyncs += 1  # another process moved the offset: ask where to continue
                    offset = self._head(entry)
                    sent = _md5_file(fileobj, offset)
                    continue
                sent = running
        self._store.forget_upload(self.key)
        return self._verify(entry)

    # -- protocol -------------------------------------------------------------------------

    def _headers(self, **extra: str) -> dict[str, str]:
        return {"Tus-Resumable": TUS_VERSION, **extra}

    def _resume_or_create(self, fileobj: BinaryIO) -> tuple[UploadEntry, int]:
        entry = self._store.upload(self.key)
        if entry is not None:
            try:
                return entry, self._head(entry)
            except UpdlError as exc:
                if exc.status not in GONE:
                    raise
                self._store.forget_upload(self.key)
        md5 = _md5_file(fileobj, self.key.size).hexdigest()  # the first read, see the docstring
        metadata = ",".join(f"{key} {base64.b64encode(value.encode()).decode()}"
                            for key, value in (("name", self._name), ("md5", md5)))
        response = self._transport.request("POST", "/tus/", headers=self._headers(**{
            "Upload-Length": str(self.key.size), "Upload-Metadata": metadata}))
        with response:
            url = self._relative(response.headers.get("Location", ""))
        entry = UploadEntry(url, md5, time.time() + DEFAULT_UPLOAD_TTL)
        if self.key.size:
            self._store.remember_upload(self.key, entry)
        return entry, 0

    def _relative(self, location: str) -> str:
        """The upload's path relative to the server URL, from a (possibly absolute) ``Location``."""
        base = self._transport.base_url
        full = urljoin(base + "/tus/", location)
        return full[len(base):] if full.startswith(base + "/") else urlsplit(full).path

    def _head(self, entry: UploadEntry) -> int:
        response = self._transport.request("HEAD", entry.url, headers=self._headers())
        with response:
            offset = response.headers.get("Upload-Offset", "")
        if not offset.isdigit():
            raise UpdlError(f"{self._name}: the server's HEAD answer has no Upload-Offset",
                            response=response)
        return int(offset)

    def _patch(self, entry: UploadEntry, offset: int, data: bytes, attempt: int) -> int:
        checksum = base64.b64encode(hashlib.md5(data).digest()).decode()
        body = _ChunkBody(data, lambda n: self._report(
            ProgressEvent(self._name, offset + n, self.key.size, attempt)))
        try:
            response = self._transport.request("PATCH", entry.url, data=body, headers=self._headers(**{
                "Content-Type": OFFSET_STREAM, "Upload-Offset": str(offset),
                "Upload-Checksum": f"md5 {checksum}"}))
        except ChecksumMismatchError as exc:
            if exc.expected is None:  # a 409 without digests: the offset moved, not the file
                raise BadRequestError(str(exc), response=exc.response, status=409) from exc
            self._store.forget_upload(self.key)  # the server refused the whole file and dropped it
            raise
        except UpdlError as exc:
            if exc.status == 460:
                raise ChecksumMismatchError(
                    f"{self._name}: a chunk at offset {offset} was corrupted in transit",
                    response=exc.response, status=460) from exc
            if exc.status == 423:
                raise UploadBusyError(f"{self._name}: another request is writing to this upload",
                                      response=exc.response, status=423) from exc
            if exc.status in GONE:
                self._store.forget_upload(self.key)
            raise
        with response:
            new_offset = response.headers.get("Upload-Offset", "")
        if not new_offset.isdigit() or int(new_offset) != offset + len(data):
            raise UpdlError(f"{self._name}: the server answered Upload-Offset {new_offset!r} "
                            f"after {offset + len(data)} bytes", response=response)
        return int(new_offset)

    def _abandon(self, entry: UploadEntry) -> None:
        self._store.forget_upload(self.key)
        try:
            self._transport.request("DELETE", entry.url, headers=self._headers()).close()
        except UpdlError:
            pass  # it expires on the server anyway

    def _verify(self, entry: UploadEntry) -> FileInfo:
        try:
            response = self._transport.request("GET", file_path("info", self._name))
        except NotFoundError as exc:
            raise ChecksumMismatchError(f"{self._name}: the completed upload is not on the server",
                                        expected=entry.md5, response=exc.response) from exc
        info = FileInfo.from_json(response.json())
        if info.md5 != entry.md5 or info.size != self.key.size:
            self._transport.request("DELETE", file_path("files", self._name)).close()
            raise ChecksumMismatchError(
                f"checksum mismatch (the server stored md5 {info.md5}, the client sent {entry.md5})",
                expected=entry.md5, actual=info.md5, response=response)
        return info
