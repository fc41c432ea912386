"""Stream wrappers that hash (MD5) the bytes passing through and report the absolute position.

A byte is read from disk once: the multipart encoder pulls the file through a
:class:`HashingReader`, and a download pushes the body through a
:class:`HashingWriter`. Nothing here holds a whole file in memory.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

from .errors import SourceChangedError

__all__ = ["CHUNK_SIZE", "HashingReader", "HashingWriter", "md5_of"]

CHUNK_SIZE = 1024 * 1024


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
    """

    def __init__(self, fileobj: BinaryIO, on_read: Callable[[int], None] | None = None) -> None:
        self._file = fileobj
        self._on_read = on_read
        self._hash = hashlib.md5()
        self.size = _remaining(fileobj)
        self.bytes_read = 0

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
            return b""
        data = self._file.read(size)
        if not data and remaining:
            raise SourceChangedError(
                f"the file shrank while being read ({self.bytes_read} of {self.size} bytes); "
                "upload it again once it is complete"
            )
        self._hash.update(data)
        self.bytes_read += len(data)
        if self._on_read is not None:
            self._on_read(self.bytes_read)
        return data

    def hexdigest(self) -> str:
        """MD5 (lowercase hex) of the bytes read so far."""
        return self._hash.hexdigest()


class HashingWriter:
    """Writes to ``fileobj`` and hashes what passes through; ``on_write(position)`` gets the absolute count.

    The hashing and the writing each run on a worker thread of their own while
    the caller goes back to the network (hashlib and file writes release the
    GIL), so receiving, hashing and writing overlap; at most ``MAX_PENDING``
    chunks are in flight, which bounds memory. Call :meth:`close` before relying
    on the file's contents; :meth:`hexdigest` waits for the hashing itself.
    """

    MAX_PENDING = 8

    def __init__(self, fileobj: BinaryIO, on_write: Callable[[int], None] | None = None,
                 digest: Any = None) -> None:
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
        self._pending.append((self._hashing.submit(self._hash.update, data),
                              self._writing.submit(self._file.write, data)))
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


def md5_of(path: str | os.PathLike[str]) -> str:
    """MD5 (lowercase hex) of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()
