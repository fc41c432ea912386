"""Stream wrappers that hash (MD5) the bytes passing through and report the absolute position.

A byte is read from disk once: the multipart encoder pulls the file through a
:class:`HashingReader`, and a download pushes the body through a
:class:`HashingWriter`; a batch upload that also writes a manifest wraps the
file in a :class:`DigestingFile`, so its SHA-256 comes from that same read.
Nothing here holds a whole file in memory.

Hashing while sending cannot tell a file rewritten half-way from a good one:
the MD5 matches the bytes sent, so the server would store a torn file as
verified. So the reader also compares the file's :class:`FileState` (size,
mtime, ctime of the open descriptor, as GNU tar does for "file changed as we
read it") before the first and after the last byte, and raises
:class:`SourceChangedError` *before* handing out the last bytes: the body is
never complete, the connection is dropped and the server keeps nothing.
Like tar's, the check cannot see a same-size rewrite that lands within the
file system's timestamp granularity of the first read (a few ms at worst).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO

from .errors import SourceChangedError

__all__ = [
    "CHUNK_SIZE",
    "DigestingFile",
    "FileState",
    "HashingReader",
    "HashingWriter",
    "digest_file",
    "file_state",
    "hash_file",
    "md5_of",
]

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class FileState:
    """What changes when a file's content does: size, modification and status-change times (ns)."""

    size: int
    mtime_ns: int
    ctime_ns: int

    def change_from(self, before: FileState) -> str:
        """How the file changed since ``before``, for a message (``size 10 -> 12``)."""
        if self.size != before.size:
            return f"size {before.size} -> {self.size} bytes"
        return "modified" if self.mtime_ns != before.mtime_ns else "its status changed (ctime)"


def file_state(fileobj: Any) -> FileState | None:
    """The state of the regular file behind ``fileobj``'s descriptor; None for a stream without one.

    The inode is left out: the open descriptor pins it, so a file replaced by
    a rename leaves the copy being read intact, and reading it stays consistent.
    """
    try:
        st = os.fstat(fileobj.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return FileState(st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _remaining(fileobj: BinaryIO) -> int | None:
    """Bytes from the current position to the end, or None when the stream cannot tell."""
    try:
        if not fileobj.seekable():
            return None
        start = fileobj.tell()
        end = fileobj.seek(0, io.SEEK_END)
        fileobj.seek(start)
    except (AttributeError, OSError, ValueError):
        return None
    return max(end - start, 0)


class HashingReader:
    """Reads ``fileobj`` from its current position, hashing what passes through.

    ``on_read(position)`` is called after each read with the absolute number of
    bytes read so far. For a seekable file ``len()`` is the number of bytes
    still to read (requests-toolbelt needs it to size the multipart body) and
    reads stop at the length measured when the reader was made, so the body
    always matches the announced ``Content-Length``. Deliberately has no
    ``fileno()``: the encoder would then bypass this wrapper.

    A file with a descriptor that changes while it is read (see the module
    docstring) raises :class:`SourceChangedError` from the read that would
    return its last bytes; a stream without one (``BytesIO``) is taken as read.
    """

    def __init__(
        self, fileobj: BinaryIO, on_read: Callable[[int], None] | None = None, *, sha256: bool = False
    ) -> None:
        """``sha256``: hash SHA-256 as well (:meth:`sha256_hexdigest`)."""
        self._file = fileobj
        self._on_read = on_read
        self._hash = hashlib.md5()
        self._sha256 = hashlib.sha256() if sha256 else None
        self._state = file_state(fileobj)  # before the first byte
        self.size = _remaining(fileobj)
        self.bytes_read = 0
        name = getattr(fileobj, "name", None)
        self._label = name if isinstance(name, str) else "the file"

    @property
    def remaining(self) -> int | None:
        """Bytes still to read, or None for a stream of unknown length."""
        return None if self.size is None else self.size - self.bytes_read

    def __len__(self) -> int:
        if self.size is None:
            raise TypeError("length of a non-seekable stream is unknown")
        return self.size - self.bytes_read

    @property
    def len(self) -> int:
        """Same as ``len(reader)``; some consumers look for this attribute."""
        return len(self)

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all remaining when negative or None)."""
        remaining = self.remaining
        if size is None or size < 0:
            size = remaining if remaining is not None else -1
        elif remaining is not None:
            size = min(size, remaining)
        if size == 0:
            self.check_unchanged()
            return b""
        data = self._file.read(size)
        if not data and remaining:
            raise self._changed(f"it ended after {self.bytes_read} of {self.size} bytes")
        self._hash.update(data)
        if self._sha256 is not None:
            self._sha256.update(data)
        self.bytes_read += len(data)
        if self.remaining == 0:
            self.check_unchanged()  # before these last bytes go out: a torn body is never complete
        if self._on_read is not None:
            self._on_read(self.bytes_read)
        return data

    def check_unchanged(self) -> None:
        """Raise :class:`SourceChangedError` if the file changed since the reader was made."""
        if self._state is None:
            return
        now = file_state(self._file)
        if now != self._state:
            raise self._changed(now.change_from(self._state) if now is not None else "it is gone")

    def _changed(self, how: str) -> SourceChangedError:
        return SourceChangedError(
            f"{self._label} changed while it was being uploaded ({how}); "
            "nothing was stored: upload it again once it is complete"
        )

    def hexdigest(self) -> str:
        """MD5 (lowercase hex) of the bytes read so far."""
        return self._hash.hexdigest()

    def sha256_hexdigest(self) -> str | None:
        """SHA-256 (lowercase hex) of the bytes read so far; None unless asked for."""
        return None if self._sha256 is None else self._sha256.hexdigest()


class HashingWriter:
    """Writes to ``fileobj`` and hashes what passes through; ``on_write(position)`` gets the absolute count.

    The hashing and the writing each run on a worker thread of their own while
    the caller goes back to the network (hashlib and file writes release the
    GIL), so receiving, hashing and writing overlap; at most ``MAX_PENDING``
    chunks are in flight, which bounds memory. Call :meth:`close` before relying
    on the file's contents; :meth:`hexdigest` waits for the hashing itself.
    """

    MAX_PENDING = 8

    def __init__(self, fileobj: BinaryIO, on_write: Callable[[int], None] | None = None, digest: Any = None) -> None:
        """``digest``: an MD5 already fed with the bytes before these (a resumed download's prefix)."""
        self._file = fileobj
        self._on_write = on_write
        self._hash = digest if digest is not None else hashlib.md5()
        self.bytes_written = 0
        self._hashing = ThreadPoolExecutor(1, thread_name_prefix="updl-hash")
        self._writing = ThreadPoolExecutor(1, thread_name_prefix="updl-write")
        self._pending: deque[tuple[Future[Any], Future[Any]]] = deque()

    def write(self, data: bytes) -> int:
        """Queue all of ``data`` for hashing and writing; returns its length.

        Raises the error of an earlier chunk's write (a full disk, say) when it surfaces.
        """
        while len(self._pending) >= self.MAX_PENDING:
            self._settle_oldest()
        self._pending.append(
            (self._hashing.submit(self._hash.update, data), self._writing.submit(self._file.write, data))
        )
        self.bytes_written += len(data)
        if self._on_write is not None:
            self._on_write(self.bytes_written)
        return len(data)

    def close(self) -> None:
        """Wait until every queued byte is hashed and written (raising a write error); idempotent."""
        try:
            while self._pending:
                self._settle_oldest()
        finally:
            self._hashing.shutdown()
            self._writing.shutdown()

    def hexdigest(self) -> str:
        """MD5 (lowercase hex) of the bytes written so far (waits for them)."""
        self.close()
        return self._hash.hexdigest()

    def _settle_oldest(self) -> None:
        hashed, written = self._pending.popleft()
        hashed.result()
        written.result()


class DigestingFile:
    """A read-only seekable file that hashes what is read sequentially from offset 0.

    A seek back to 0 (a retry starting over) resets the hash, so the digest
    is that of the last attempt's bytes. ``complete(size)`` tells whether the
    hash covers exactly ``size`` bytes. ``fileno()`` and ``name`` are the
    file's, so the upload can check that the file did not change while read
    (only the upload's own :class:`~updl.sdk.hashing.HashingReader` sees this
    object, and it has no ``fileno()``: the encoder cannot bypass either).
    """

    def __init__(self, fileobj: BinaryIO, algorithm: str) -> None:
        self._file = fileobj
        self._algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self._hashed = 0

    @property
    def name(self) -> object:
        return getattr(self._file, "name", None)

    def fileno(self) -> int:
        return self._file.fileno()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._file.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self._file.seek(offset, whence)
        if position == 0:
            self._hash = hashlib.new(self._algorithm)
            self._hashed = 0
        return position

    def read(self, size: int | None = -1) -> bytes:
        position = self._file.tell()
        data = self._file.read(-1 if size is None else size)
        end = position + len(data)
        if position <= self._hashed < end:
            self._hash.update(data[self._hashed - position :])
            self._hashed = end
        return data

    def complete(self, size: int) -> bool:
        """Whether exactly ``size`` bytes were hashed."""
        return self._hashed == size

    def hexdigest(self) -> str:
        """The digest of the bytes hashed so far."""
        return self._hash.hexdigest()


def hash_file(
    source: str | os.PathLike[str] | BinaryIO, algorithms: Iterable[str] = ("md5",), *, length: int | None = None
) -> dict[str, Any]:
    """``hashlib`` objects fed, in one read, with a file's bytes: all of them, or the first ``length``.

    The one place a file is hashed from disk: whole files (:func:`digest_file`)
    and the prefix a resumed transfer continues from (the objects go on being
    fed). A file object is read from its start and left at the end of what
    was read. A file shorter than ``length`` raises :class:`SourceChangedError`.
    """
    hashes = {name: hashlib.new(name) for name in algorithms}
    with contextlib.ExitStack() as stack:
        if isinstance(source, (str, os.PathLike)):
            fileobj: BinaryIO = stack.enter_context(open(source, "rb"))
        else:
            fileobj = source
            fileobj.seek(0)
        remaining = length
        while remaining is None or remaining > 0:
            chunk = fileobj.read(CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining))
            if not chunk:
                break
            for digest in hashes.values():
                digest.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
        if length is not None and remaining:
            raise SourceChangedError(
                f"the file shrank while being read ({length - remaining} "
                f"of {length} bytes); upload it again once it is complete"
            )
    return hashes


def digest_file(path: str | os.PathLike[str], algorithms: Iterable[str] = ("md5",)) -> dict[str, str]:
    """Hex digests of one file for each algorithm, all computed in a single read."""
    return {name: digest.hexdigest() for name, digest in hash_file(path, algorithms).items()}


def md5_of(path: str | os.PathLike[str]) -> str:
    """MD5 (lowercase hex) of a file, read in 1 MiB chunks."""
    return digest_file(path)["md5"]
