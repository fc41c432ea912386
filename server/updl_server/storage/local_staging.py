"""The staging area of the local blob store: one file per resumable upload, held by ``flock``.

Layout: ``<root>/staging/<upload id>``, one file per upload (the semantics
of staging are in :mod:`.base`). The hold is an ``flock`` on the file,
released by the kernel when a process dies, so a crash never leaves an
upload locked. ``promote`` renames the file into the blob tree (no copy).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from ..formats import UPLOAD_ID
from .base import CHUNK_SIZE, StagedUpload, StagedUploadGoneError, StagingBusyError
from .localfs import fsync_dir, older_than


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

    @property
    def path(self) -> Path:
        """The staging file."""
        return self._path

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

    def keep(self) -> int:
        """Every appended byte is kept: flush + fsync, then the file's length."""
        self.sync()
        return self.size()

    def chunks(self) -> Iterator[bytes]:
        """Read the whole file through a second handle (this one stays positioned at the end)."""
        self._handle().flush()
        with open(self._path, "rb") as reader:
            while chunk := reader.read(CHUNK_SIZE):
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

    def __init__(
        self,
        root: Path,
        new_blob: Callable[[], tuple[Path, str]],
        grace: float,
        join: Callable[[list[Path]], str] | None = None,
    ) -> None:
        """Staging under ``root`` (created on first use); ``new_blob`` names promoted blobs.

        ``join(paths)`` makes the files at ``paths`` the segments of one new blob (moving
        them) and returns its location. ``sweep`` leaves alone uploads touched less than
        ``grace`` seconds ago.
        """
        self.root = root
        self._new_blob = new_blob
        self._grace = grace
        self._join = join

    def concatenate(self, held: Sequence[StagedUpload], owner_id: int = 0) -> str:
        """One part: promote it (a rename); several: their files become one composite blob."""
        parts = [part for part in held if isinstance(part, LocalStagedUpload)]
        if len(parts) != len(held) or not parts:
            raise TypeError("concatenate takes this staging area's own held uploads")
        if len(parts) == 1:
            return parts[0].promote(owner_id)
        if self._join is None:
            raise RuntimeError("this staging area cannot join uploads")
        for part in parts:
            part.sync()
        location = self._join([part.path for part in parts])
        fsync_dir(self.root)
        return location

    def path(self, upload_id: str) -> Path:
        """The staging file of ``upload_id`` (refuses anything that is not one of our ids)."""
        if not UPLOAD_ID.match(upload_id):
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

    def sweep(self, is_live: Callable[[str], bool]) -> int:
        """Remove staging files older than the grace period that no catalog row owns."""
        if not self.root.is_dir():
            return 0
        removed = 0
        cutoff = time.time() - self._grace
        for entry in self.root.iterdir():
            if not UPLOAD_ID.match(entry.name) or not older_than(entry, cutoff):
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
