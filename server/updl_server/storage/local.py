"""Blobs as files on local disk, under the data dir (the ``BlobStore`` of :mod:`.base`).

Layout under ``root``::

    ab/ab12...ef          committed blobs, sharded by the first two hex digits
    ab/ab12...ef/00000..  a composite blob: a directory of segments read in name order
                          (the parts of a tus concatenation, joined without a copy)
    tmp/<process>/lock    one dir per server process, flock'ed for its lifetime
    tmp/<process>/*.part  uploads in flight
    staging/<upload id>   resumable (tus) uploads, shared by all processes (see ``local_staging``)

A write is a temporary file in this process's ``tmp/`` dir, fsync'ed and
renamed into place on commit. A process that dies (even ``kill -9``)
releases its lock, so the next ``sweep()`` removes its temporaries; a live
process's lock keeps other processes sharing the data dir away from its
in-flight files.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from .base import CHUNK_SIZE, ORPHAN_GRACE_SECONDS, BlobNotFoundError, SweepReport
from .local_staging import LocalStaging
from .localfs import fsync_dir, older_than

_LOCATION = re.compile(r"^[0-9a-f]{32}$")


class LocalBlobWriter:
    """A temporary file that is fsync'ed and renamed into place on commit."""

    def __init__(self, temp_path: Path, final_path: Path, location: str) -> None:
        """Create ``temp_path``; ``commit()`` renames it to ``final_path``."""
        self._temp = temp_path
        self._final = final_path
        self._location = location
        # Closed by commit() or abort(); "x" because a location must never be reused.
        self._file: IO[bytes] | None = open(temp_path, "xb")  # noqa: SIM115
        self._done = False

    @property
    def temp_path(self) -> Path:
        """The temporary file (for diagnostics and tests)."""
        return self._temp

    def write(self, data: bytes) -> None:
        """Append bytes to the temporary file."""
        if self._file is None:
            raise ValueError("blob writer is closed")
        self._file.write(data)

    def commit(self) -> str:
        """fsync, rename into the store, fsync the directory; return the location."""
        if self._file is None:
            raise ValueError("blob writer is closed")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        self._final.parent.mkdir(exist_ok=True)
        os.replace(self._temp, self._final)
        fsync_dir(self._final.parent)
        self._done = True
        return self._location

    def abort(self) -> None:
        """Close and delete the temporary file, if not committed."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if not self._done:
            self._temp.unlink(missing_ok=True)
            self._done = True


class LocalBlobReader:
    """Chunks of an already-open file, from ``start`` up to ``end`` (exclusive)."""

    def __init__(self, handle: IO[bytes], start: int, end: int | None, chunk_size: int) -> None:
        """Wrap an open handle; nothing is read until iteration."""
        self._handle = handle
        self._start = start
        self._end = end
        self._chunk_size = chunk_size

    def __iter__(self) -> Iterator[bytes]:
        """Yield the range in chunks, closing the handle at the end."""
        try:
            self._handle.seek(self._start)
            remaining = None if self._end is None else self._end - self._start
            while remaining is None or remaining > 0:
                want = self._chunk_size if remaining is None else min(self._chunk_size, remaining)
                chunk = self._handle.read(want)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        """Close the handle."""
        self._handle.close()


class CompositeBlobReader:
    """Bytes ``[start, end)`` across the already-open segments of a composite blob."""

    def __init__(self, handles: list[IO[bytes]], start: int, end: int | None, chunk_size: int) -> None:
        """Wrap open segment handles (in order); nothing is read until iteration."""
        self._handles = handles
        self._start = start
        self._end = end
        self._chunk_size = chunk_size

    def __iter__(self) -> Iterator[bytes]:
        """Yield the range in chunks, segment after segment, closing the handles at the end."""
        try:
            base = 0  # the blob offset of the current segment's first byte
            for handle in self._handles:
                size = os.fstat(handle.fileno()).st_size
                lo = max(self._start - base, 0)
                hi = size if self._end is None else min(size, self._end - base)
                base += size
                if lo >= hi:
                    continue
                yield from LocalBlobReader(handle, lo, hi, self._chunk_size)
        finally:
            self.close()

    def close(self) -> None:
        """Close every segment."""
        for handle in self._handles:
            handle.close()


def _open_composite(directory: Path) -> list[IO[bytes]]:
    handles: list[IO[bytes]] = []
    try:
        for segment in sorted(directory.iterdir()):
            handles.append(open(segment, "rb"))  # noqa: SIM115 - closed by the reader
    except BaseException:
        for handle in handles:
            handle.close()
        raise
    return handles


class LocalBlobStore:
    """Blobs as files under ``root`` (see the module docstring for the layout)."""

    def __init__(self, root: Path, *, chunk_size: int = CHUNK_SIZE, orphan_grace: float = ORPHAN_GRACE_SECONDS) -> None:
        """A store rooted at ``root``; call ``start()`` before writing."""
        self.root = root
        self.chunk_size = chunk_size
        self.orphan_grace = orphan_grace
        self._tmp_root = root / "tmp"
        self._process_dir: Path | None = None
        self._lock: IO[bytes] | None = None
        self._staging = LocalStaging(root / "staging", self._new_blob_path, orphan_grace, self._join)

    @property
    def staging(self) -> LocalStaging:
        """The staging area, ``<root>/staging``."""
        return self._staging

    @property
    def process_dir(self) -> Path | None:
        """This process's temporary directory (``None`` before ``start()``)."""
        return self._process_dir

    def start(self) -> None:
        """Create and lock this process's temporary directory."""
        self._tmp_root.mkdir(parents=True, exist_ok=True)
        # Built under a hidden name and renamed only once locked, so a concurrent
        # sweep never sees an unlocked process dir that is in fact alive.
        staging = Path(tempfile.mkdtemp(dir=self._tmp_root, prefix=".new-"))
        lock = open(staging / "lock", "wb")  # noqa: SIM115 - held for the process lifetime
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        final = self._tmp_root / f"{os.getpid()}-{secrets.token_hex(4)}"
        os.rename(staging, final)
        self._lock, self._process_dir = lock, final

    def close(self) -> None:
        """Remove this process's temporary directory and release its lock."""
        if self._process_dir is not None:
            shutil.rmtree(self._process_dir, ignore_errors=True)
            self._process_dir = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def begin(self, owner_id: int = 0) -> LocalBlobWriter:
        """A writer for a new blob with a fresh id (local blobs are not grouped by owner)."""
        if self._process_dir is None:
            raise RuntimeError("LocalBlobStore.start() was not called")
        location = uuid.uuid4().hex
        return LocalBlobWriter(self._process_dir / f"{location}.part", self._path(location), location)

    def open(self, location: str, start: int = 0, end: int | None = None) -> LocalBlobReader | CompositeBlobReader:
        """Open the blob now, so a later delete cannot pull it from under the reader."""
        path = self._path(location)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the reader
        except IsADirectoryError:
            try:
                return CompositeBlobReader(_open_composite(path), start, end, self.chunk_size)
            except FileNotFoundError as exc:
                raise BlobNotFoundError(location) from exc
        except FileNotFoundError as exc:
            raise BlobNotFoundError(location) from exc
        return LocalBlobReader(handle, start, end, self.chunk_size)

    def delete(self, location: str) -> None:
        """Unlink a committed blob; open readers keep their bytes (POSIX semantics)."""
        _remove(self._path(location))

    def _join(self, paths: list[Path]) -> str:
        """Move the files at ``paths`` into a new composite blob, in order; return its location.

        Built in this process's temporary directory (a crash leaves it to the sweep of
        dead processes' temporaries), then renamed into place in one step. Renames
        only: the bytes are not copied.
        """
        if self._process_dir is None:
            raise RuntimeError("LocalBlobStore.start() was not called")
        final, location = self._new_blob_path()
        building = self._process_dir / f"{location}.join"
        building.mkdir()
        for number, path in enumerate(paths):
            os.rename(path, building / f"{number:05d}")
        fsync_dir(building)
        final.parent.mkdir(exist_ok=True)
        os.rename(building, final)
        fsync_dir(final.parent)
        fsync_dir(self._process_dir)
        return location

    def sweep(self, is_referenced: Callable[[str], bool]) -> SweepReport:
        """Remove dead processes' temp dirs and unreferenced blobs older than the grace period."""
        return SweepReport(temp_dirs=self._sweep_temp(), orphan_blobs=self._sweep_orphans(is_referenced))

    def _sweep_temp(self) -> int:
        removed = 0
        if not self._tmp_root.is_dir():
            return 0
        cutoff = time.time() - self.orphan_grace
        for entry in self._tmp_root.iterdir():
            if entry == self._process_dir:
                continue
            if entry.name.startswith(".new-"):
                # A process that died within its first instant; give live ones time to rename.
                if older_than(entry, cutoff):
                    shutil.rmtree(entry, ignore_errors=True)
                    removed += 1
                continue
            if entry.is_dir() and not _lock_held(entry / "lock"):
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        return removed

    def _sweep_orphans(self, is_referenced: Callable[[str], bool]) -> int:
        removed = 0
        cutoff = time.time() - self.orphan_grace
        for shard in self.root.iterdir():
            if not (shard.is_dir() and re.fullmatch(r"[0-9a-f]{2}", shard.name)):
                continue
            for blob in shard.iterdir():
                if _LOCATION.match(blob.name) and older_than(blob, cutoff) and not is_referenced(blob.name):
                    _remove(blob)
                    removed += 1
        return removed

    def _new_blob_path(self) -> tuple[Path, str]:
        location = uuid.uuid4().hex
        return self._path(location), location

    def _path(self, location: str) -> Path:
        # Locations come from the catalog; refuse anything that is not one of our ids.
        if not _LOCATION.match(location):
            raise ValueError(f"not a blob location: {location!r}")
        return self.root / location[:2] / location


def _remove(path: Path) -> None:
    """Delete a blob: a file, or a composite blob's directory (absent is fine)."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        shutil.rmtree(path, ignore_errors=True)


def _lock_held(lock_path: Path) -> bool:
    """Whether a live process holds the flock on ``lock_path`` (a missing lock means dead)."""
    try:
        handle = open(lock_path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False
