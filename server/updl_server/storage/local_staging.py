"""Staged uploads: the partial bytes of resumable (tus) uploads, shared by every server process.

A staged upload is created empty, grows by appends (one per PATCH), and at
the end either becomes a committed, still unreferenced blob (``promote``) or
is thrown away (``discard``). Unlike the per-process ``tmp/`` dir, staging is
shared: consecutive PATCHes of one upload may land on different processes of
the same data dir, so all state lives in the catalog row and here.

Only one request may append at a time: ``claim`` takes an exclusive,
non-blocking hold (``StagingBusyError`` otherwise, answered with 423). The
catalog's offset is the authority; bytes past it (left by a writer that died
before the catalog advanced) are cut off with ``truncate`` by the next holder.

Local layout: ``<root>/staging/<upload id>``, one file per upload, the hold
an ``flock`` on it — released by the kernel when a process dies, so a crash
never leaves an upload locked. ``promote`` renames the file into the blob
tree (no copy).

An S3 store would keep each PATCH's bytes as its own object
(``staging/<id>/<offset>-<random>``, written in full before the catalog's
offset compare-and-set makes it count; a losing writer deletes its object);
``truncate`` deletes part objects at or past the offset, ``size`` sums the
counted parts, ``promote`` composes them with a multipart upload
(``UploadPartCopy``, parts of at least 5 MiB, so small PATCHes are first
coalesced) into the final blob, and the hold is the catalog's compare-and-set
alone.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Protocol

from .localfs import fsync_dir, older_than

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
READ_CHUNK = 1024 * 1024


class StagingBusyError(Exception):
    """Another request holds this staged upload (a concurrent PATCH or DELETE)."""


class StagedUploadGoneError(FileNotFoundError):
    """No staged bytes under that id (completed, terminated or swept)."""


class StagedUpload(Protocol):
    """An exclusive hold on one staged upload; ``close()`` releases it."""

    def size(self) -> int:
        """Bytes staged so far (may exceed the catalog's offset after a crash)."""

    def truncate(self, size: int) -> None:
        """Drop every byte past ``size``."""

    def append(self, data: bytes) -> None:
        """Add bytes at the end."""

    def sync(self) -> None:
        """Make the appended bytes durable (before the catalog's offset moves past them)."""

    def chunks(self) -> Iterator[bytes]:
        """Everything staged, from the first byte (to hash it at completion)."""

    def promote(self, owner_id: int) -> str:
        """Turn the staged bytes into a committed (still unreferenced) blob of ``owner_id``;
        return its location."""

    def discard(self) -> None:
        """Delete the staged bytes."""

    def close(self) -> None:
        """Release the hold (idempotent)."""


class LocalStagedUpload:
    """One staging file held under an exclusive ``flock``."""

    def __init__(self, path: Path, new_blob: Callable[[], tuple[Path, str]]) -> None:
        """Open and lock ``path``: ``StagedUploadGoneError`` / ``StagingBusyError``.

        ``new_blob()`` gives a fresh blob's path and location for ``promote``.
        """
        self._path = path
        self._new_blob = new_blob
        try:
            self._file: IO[bytes] | None = open(path, "r+b")  # noqa: SIM115 - closed by close()
        except FileNotFoundError as exc:
            raise StagedUploadGoneError(path.name) from exc
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise StagingBusyError(path.name) from None
        if os.fstat(self._file.fileno()).st_nlink == 0:
            # Promoted or discarded by the previous holder between our open and our lock.
            self.close()
            raise StagedUploadGoneError(path.name)

    def _handle(self) -> IO[bytes]:
        if self._file is None:
            raise ValueError("staged upload is closed")
        return self._file

    def size(self) -> int:
        """The staging file's length."""
        return os.fstat(self._handle().fileno()).st_size

    def truncate(self, size: int) -> None:
        """Cut the file back to ``size`` bytes."""
        handle = self._handle()
        handle.flush()
        handle.truncate(size)
        handle.seek(size)

    def append(self, data: bytes) -> None:
        """Write at the end of the file."""
        handle = self._handle()
        handle.seek(0, os.SEEK_END)
        handle.write(data)

    def sync(self) -> None:
        """flush + fsync."""
        handle = self._handle()
        handle.flush()
        os.fsync(handle.fileno())

    def chunks(self) -> Iterator[bytes]:
        """Read the whole file through a second handle (this one stays positioned at the end)."""
        self._handle().flush()
        with open(self._path, "rb") as reader:
            while chunk := reader.read(READ_CHUNK):
                yield chunk

    def promote(self, owner_id: int = 0) -> str:
        """fsync, rename into the blob tree, fsync both directories; return the location."""
        self.sync()
        final, location = self._new_blob()
        final.parent.mkdir(exist_ok=True)
        os.replace(self._path, final)
        fsync_dir(final.parent)
        fsync_dir(self._path.parent)
        return location

    def discard(self) -> None:
        """Unlink the staging file (the hold stays until ``close()``)."""
        self._path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the file, which releases the flock."""
        if self._file is not None:
            self._file.close()
            self._file = None


class LocalStaging:
    """The staging area of a local blob store: ``<root>/staging``."""

    def __init__(self, root: Path, new_blob: Callable[[], tuple[Path, str]]) -> None:
        """Staging under ``root`` (created on first use); ``new_blob`` names promoted blobs."""
        self.root = root
        self._new_blob = new_blob

    def path(self, upload_id: str) -> Path:
        """The staging file of ``upload_id`` (refuses anything that is not one of our ids)."""
        if not _UPLOAD_ID.match(upload_id):
            raise ValueError(f"not an upload id: {upload_id!r}")
        return self.root / upload_id

    def create(self, upload_id: str) -> None:
        """Create an empty staging file; ids are never reused."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.path(upload_id), "xb"):
            pass

    def claim(self, upload_id: str) -> LocalStagedUpload:
        """An exclusive hold on ``upload_id``'s staged bytes."""
        return LocalStagedUpload(self.path(upload_id), self._new_blob)

    def sweep(self, is_live: Callable[[str], bool], grace: float) -> int:
        """Remove staging files older than ``grace`` seconds that no catalog row owns."""
        if not self.root.is_dir():
            return 0
        removed = 0
        cutoff = time.time() - grace
        for entry in self.root.iterdir():
            if not _UPLOAD_ID.match(entry.name) or not older_than(entry, cutoff):
                continue
            if is_live(entry.name):
                continue
            try:
                held = self.claim(entry.name)
            except (StagingBusyError, StagedUploadGoneError):
                continue
            try:
                held.discard()
                removed += 1
            finally:
                held.close()
        return removed
