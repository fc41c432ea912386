"""Resumable uploads of large files over tus 1.0, verified end to end.

**As few PATCHes as the link allows** (``Settings.resumable_chunk_size`` 0,
the default). Waiting for each chunk's answer before sending the next idles
the link for a round trip per chunk (half of a 1 Gbit/s, 50 ms link with
8 MiB chunks). So the file goes in one streamed PATCH for all but its last
``STREAM_TAIL`` bytes, without ``Upload-Checksum``: updl-server (like tusd)
then keeps what such a PATCH delivered — durable every 64 MiB while it runs
and whatever arrived when the connection drops — so an interruption loses a
bounded amount and the retry (or a later run) resumes from the server's
offset (``HEAD``). A per-PATCH checksum would make the PATCH all or nothing
(it covers the whole body), so it is left to the tail. The tail then goes as
one checksummed PATCH carrying ``Upload-Md5``: the whole file's MD5, known
only once every byte has been read, still decides the commit. The body is
read and MD5-hashed one piece ahead in a worker thread while the socket sends
the previous piece. A positive ``resumable_chunk_size`` keeps the chunked
mode described next: each PATCH checksummed and acknowledged before the next.

**Chunked mode: one read of the file.** The upload is created with just a name and a
length. Then the file is read once, in chunks (``Settings.resumable_chunk_size``,
8 MiB by default), and each chunk's bytes in memory feed two digests: the
chunk's own checksum, sent as the PATCH's ``Upload-Checksum`` (the server
checks it before counting the bytes; 460 otherwise, and the next attempt
resumes from the server's offset), and the running MD5 of the whole file,
sent on the last PATCH as ``Upload-Md5`` (updl's extension to tus, see
docs/api.md). The server compares that with the file it received *before*
committing anything; on a mismatch it answers 409, keeps nothing and drops
the upload, and the next attempt starts over.

The per-chunk checksum is CRC-32, not MD5: it costs the client and the server
a pass over every byte and only guards the transfer of that chunk (the file's
identity is its MD5, checked by the server before it stores anything), and
zlib's CRC-32 runs at about 3 GB/s here against MD5's 570 MB/s and SHA-1's
1.4 GB/s. tusd accepts ``crc32`` too; the server also takes md5, sha1, sha256.

Both cores work: a worker thread reads chunk N+1 and hashes it — the two
digests in parallel, since hashlib releases the GIL — while chunk N is on the
wire; at most two chunks are in memory.

On resume, the prefix the server already has is read from disk once more and
hashed: a digest cannot be carried over from the process that sent it. Just
before the last PATCH the file's size and mtime are compared with those the
upload started from (and its ctime with that when this attempt opened it); a
file that changed is abandoned (:class:`SourceChangedError`, retryable: the
retry is a new upload of the file as it is then).

**Verification.** The answer to the completing PATCH carries the stored
file's MD5 (``Upload-Md5``/``ETag``), which must equal the MD5 the client
computed. The client never deletes anything on its own: the server refused a
mismatch before commit, and by now a file of that name may be another
client's newer upload.

**Resuming.** The upload's URL goes into the :mod:`~updl.sdk.resume` store
keyed by server, name, path, size and mtime, right after creation. A later
run (after Ctrl-C, a network drop, a server restart) asks the server for the
offset (``HEAD``) and continues from there; an entry the server no longer
knows (404/410) or that has expired is forgotten and a new upload made. An
upload that completed but whose last answer was lost answers ``HEAD`` with
the full offset and the stored MD5: the rerun hashes the file, compares, and
sends nothing.
"""

from __future__ import annotations

import base64
import contextlib
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import requests

from .attributes import FileAttributes
from .errors import (
    ChecksumMismatchError,
    OffsetConflictError,
    SourceChangedError,
    UpdlError,
)
from .hashing import FileState, file_state, hash_file
from .headers import file_info, parse_count, stored_md5
from .models import FileInfo
from .progress import ProgressCallback, ProgressEvent
from .resume import DEFAULT_UPLOAD_TTL, ResumeStore, UploadEntry, UploadKey
from .transport import Transport

__all__ = ["TUS_VERSION", "TusUpload"]

TUS_VERSION = "1.0.0"
OFFSET_STREAM = "application/offset+octet-stream"
GONE = (404, 410)
MAX_RESYNCS = 3
CHUNK_CHECKSUM = "crc32"  # Upload-Checksum algorithm of each PATCH (see the module docstring)
STREAM_TAIL = 1024 * 1024  # streamed mode: the last PATCH, checksummed, carrying Upload-Md5
STREAM_PIECE = 1024 * 1024  # streamed mode: bytes per read (and per socket send)
STREAM_AHEAD = 4  # streamed mode: pieces read ahead of the socket (memory: at most this many)


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
        chunk = bytes(self._data[self._sent : end])
        self._sent = end
        self._on_read(self._sent)
        return chunk


@dataclass(frozen=True)
class _Chunk:
    """A chunk read from the file, its checksum, and the MD5 of the whole file up to its end."""

    offset: int
    data: bytes
    digest: bytes
    running_md5: str

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


class _ChunkReader:
    """The file from ``offset`` to ``size`` in chunks, read one chunk ahead of the sender.

    A worker thread reads the next chunk and hashes it while the caller sends
    the current one: the chunk's CRC-32 in a second thread, the running MD5 in
    the first (hashlib releases the GIL for large buffers). ``running`` must
    hold the MD5 of the bytes before ``offset``; it is updated in place. When
    ``offset == size`` a single empty chunk comes out (the last PATCH of an
    upload whose bytes all arrived but which the server has not completed).
    """

    def __init__(self, fileobj: BinaryIO, offset: int, size: int, chunk_size: int, running: Any) -> None:
        self._file = fileobj
        self._size = size
        self._chunk_size = chunk_size
        self._running = running
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="updl-tus-read")
        self._next: Future[_Chunk] | None = self._pool.submit(self._read, offset)

    def __enter__(self) -> _ChunkReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def take(self) -> _Chunk:
        """The next chunk (raises what reading it raised); starts reading the one after."""
        if self._next is None:
            raise RuntimeError("no chunk left to read")
        chunk = self._next.result()
        self._next = self._pool.submit(self._read, chunk.end) if chunk.end < self._size else None
        return chunk

    def close(self) -> None:
        """Wait for a read in progress (at most one chunk) and stop the threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _read(self, offset: int) -> _Chunk:
        wanted = min(self._chunk_size, self._size - offset)
        self._file.seek(offset)
        data = self._file.read(wanted)
        if len(data) != wanted:
            raise SourceChangedError(
                f"the file shrank while being uploaded ({offset + len(data)} "
                f"of {self._size} bytes); upload it again once it is complete"
            )
        own = self._pool.submit(_chunk_digest, data)  # the pool's other thread: in parallel
        self._running.update(data)
        return _Chunk(offset, data, own.result(), self._running.hexdigest())


class _StreamBody:
    """The body of a streamed PATCH: ``fileobj`` from ``offset`` to ``end``, read and MD5-hashed ahead.

    Iterable and sized (requests sends it with a ``Content-Length``, one socket
    send per piece). A worker thread reads up to ``STREAM_AHEAD`` pieces ahead
    and feeds each to ``running`` (updated in place: after the whole body it is
    the MD5 of the file up to ``end``); ``on_sent(n)`` after each piece handed
    to the socket. :meth:`close` stops the reader (a PATCH that failed half way).
    """

    def __init__(self, fileobj: BinaryIO, offset: int, end: int, running: Any, on_sent: Callable[[int], None]) -> None:
        self._length = end - offset
        self._on_sent = on_sent
        self._pieces: queue.Queue[bytes | BaseException] = queue.Queue(STREAM_AHEAD)
        self._stop = threading.Event()
        self._reader = threading.Thread(
            target=self._read, args=(fileobj, offset, end, running), name="updl-tus-stream", daemon=True
        )
        self._reader.start()

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        while sent < self._length:
            piece = self._pieces.get()
            if isinstance(piece, BaseException):
                raise piece
            yield piece
            sent += len(piece)
            self._on_sent(sent)

    def _read(self, fileobj: BinaryIO, offset: int, end: int, running: Any) -> None:
        position = offset
        try:
            fileobj.seek(offset)
            while position < end and not self._stop.is_set():
                data = fileobj.read(min(STREAM_PIECE, end - position))
                if not data:
                    raise SourceChangedError(
                        f"the file shrank while being uploaded ({position} bytes left); "
                        "upload it again once it is complete"
                    )
                running.update(data)  # hashlib releases the GIL: the socket sends meanwhile
                position += len(data)
                self._put(data)
        except BaseException as exc:  # noqa: BLE001 - handed to the sending thread, which raises it
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._pieces.put(item, timeout=0.1)
                return

    def close(self) -> None:
        """Stop the reader and wait for it (it blocks at most one read)."""
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._pieces.get_nowait()
        self._reader.join()


def upload_metadata(
    name: str,
    attributes: FileAttributes | None,
    expires_in: int | None,
    md5: str | None = None,
    sha256: str | None = None,
) -> str:
    """``Upload-Metadata`` naming the file, with its optional digests, attributes and expiry."""
    digests = [(key, value) for key, value in (("md5", md5), ("sha256", sha256)) if value is not None]
    pairs = [("name", name), *digests, *(attributes.fields() if attributes else [])]
    if expires_in is not None:
        pairs.append(("expires_in", str(expires_in)))
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in pairs)


def _chunk_digest(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "big")


def _md5_file(fileobj: BinaryIO, length: int) -> Any:
    """MD5 of the first ``length`` bytes of ``fileobj`` (a resumed upload's prefix)."""
    return hash_file(fileobj, length=length)["md5"]


class TusUpload:
    """One attempt at uploading one file resumably; call :meth:`run` per retry attempt."""

    def __init__(
        self,
        transport: Transport,
        store: ResumeStore,
        path: Path,
        name: str,
        chunk_size: int,
        report: ProgressCallback,
        expires_in: int | None = None,
        attributes: FileAttributes | None = None,
        *,
        sha256: str | None = None,
    ) -> None:
        """Prepare to upload ``path`` as ``name`` in ``chunk_size`` PATCHes (0: streamed, see the module),
        kept ``expires_in`` seconds, recording ``attributes``.

        ``sha256``: the file's SHA-256, known before sending (an offer computed it);
        claimed in the creation's metadata, so the server verifies it too.
        """
        self._attributes = attributes
        self._sha256 = sha256
        self._transport = transport
        self._store = store
        self._path = path
        self._name = name
        self._chunk_size = chunk_size
        self._report = report
        self._expires_in = expires_in
        self.key = UploadKey.for_file(transport.base_url, name, path)
        self._opened: FileState | None = None
        self.resumed_from = 0

    def run(self, attempt: int) -> FileInfo:
        """Create or resume the upload, send the rest, verify the stored file."""
        # Per attempt: after a SourceChangedError the retry is an upload of the file as it is now.
        self.key = UploadKey.for_file(self.key.server, self._name, self._path)
        with self._path.open("rb") as fileobj:
            self._opened = file_state(fileobj)
            entry, offset, stored = self._resume_or_create(fileobj, attempt)
            if attempt == 1:
                self.resumed_from = offset
            self._report(ProgressEvent(self._name, offset, self.key.size, attempt))
            running = _md5_file(fileobj, offset)  # the prefix the server has, hashed from disk
            if stored is not None:  # completed earlier; the answer to its last PATCH was lost
                md5 = running.hexdigest()
            else:
                stored, md5 = self._send(fileobj, entry, offset, running, attempt)
        self._store.forget_upload(self.key)
        return self._verified(stored, md5)

    def _send(
        self, fileobj: BinaryIO, entry: UploadEntry, offset: int, running: Any, attempt: int
    ) -> tuple[FileInfo, str]:
        """PATCH from ``offset`` to the end; return the stored file and the MD5 the client sent."""
        size = self.key.size
        resyncs = 0
        while True:
            try:
                if not self._chunk_size and size - offset > STREAM_TAIL:
                    offset = self._stream(fileobj, entry, offset, size - STREAM_TAIL, running, attempt)
                with _ChunkReader(fileobj, offset, size, self._chunk_size or STREAM_TAIL, running) as chunks:
                    while True:
                        chunk = chunks.take()
                        final = chunk.end == size
                        if final:
                            self._check_unchanged(fileobj)
                        stored = self._patch(entry, chunk, attempt, final)
                        if stored is not None:
                            return stored, chunk.running_md5
                        if final:
                            raise UpdlError(
                                f"{self._name}: the server completed the upload "
                                "without reporting the stored MD5 (Upload-Md5); "
                                "upgrade updl-server"
                            )
            except OffsetConflictError:
                if resyncs >= MAX_RESYNCS:
                    raise
            except SourceChangedError:  # what the server has can never be completed
                self._abandon(entry)
                raise
            resyncs += 1  # another process moved the offset: ask where to continue
            offset, done = self._head(entry)
            running = _md5_file(fileobj, offset)
            if done is not None:
                return done, running.hexdigest()

    # -- protocol -------------------------------------------------------------------------

    def _headers(self, **extra: str) -> dict[str, str]:
        return {"Tus-Resumable": TUS_VERSION, **extra}

    def _resume_or_create(self, fileobj: BinaryIO, attempt: int) -> tuple[UploadEntry, int, FileInfo | None]:
        entry = self._store.upload(self.key)
        if entry is not None:
            try:
                return (entry, *self._head(entry))
            except UpdlError as exc:
                if exc.status not in GONE:
                    raise
                self._store.forget_upload(self.key)
        if self._sha256 is not None and attempt > 1:
            # A new upload after a failed attempt (a mismatch, a changed file): the SHA-256 known
            # before the first attempt may be stale, and would make every retry fail the same way.
            self._sha256 = hash_file(fileobj, ("sha256",))["sha256"].hexdigest()
            fileobj.seek(0)
        # No md5 here: it travels on the last PATCH, computed while sending (one read).
        metadata = upload_metadata(self._name, self._attributes, self._expires_in, sha256=self._sha256)
        response = self._transport.request(
            "POST",
            "/tus/",
            headers=self._headers(**{"Upload-Length": str(self.key.size), "Upload-Metadata": metadata}),
        )
        with response:
            url = self._relative(response.headers.get("Location", ""))
            stored = self._stored(response, self.key.size)  # a zero-length file is stored at once
        entry = UploadEntry(url, time.time() + DEFAULT_UPLOAD_TTL)
        if self.key.size:
            self._store.remember_upload(self.key, entry)
        return entry, 0, stored

    def _relative(self, location: str) -> str:
        """The upload's path relative to the server URL, from a (possibly absolute) ``Location``."""
        base = self._transport.base_url
        full = urljoin(base + "/tus/", location)
        return full[len(base) :] if full.startswith(base + "/") else urlsplit(full).path

    def _stored(self, response: requests.Response, size: int) -> FileInfo | None:
        """The stored file, from the headers of a completed upload's answer; ``None`` if absent."""
        md5 = stored_md5(response)
        return None if md5 is None else file_info(response, self._name, size, md5)

    def _head(self, entry: UploadEntry) -> tuple[int, FileInfo | None]:
        """The server's offset and, for a completed upload, the file it stored."""
        response = self._transport.request("HEAD", entry.url, headers=self._headers())
        with response:
            offset = parse_count(response.headers.get("Upload-Offset"))
            if offset is None:
                raise UpdlError(f"{self._name}: the server's HEAD answer has no Upload-Offset", response=response)
            return offset, self._stored(response, offset)

    def _stream(self, fileobj: BinaryIO, entry: UploadEntry, offset: int, end: int, running: Any, attempt: int) -> int:
        """One PATCH of the bytes from ``offset`` to ``end``, streamed, without a checksum; returns ``end``.

        If it breaks, the server keeps what it received and the next attempt resumes from there.
        """
        body = _StreamBody(
            fileobj,
            offset,
            end,
            running,
            lambda n: self._report(ProgressEvent(self._name, offset + n, self.key.size, attempt)),
        )
        headers = self._headers(**{"Content-Type": OFFSET_STREAM, "Upload-Offset": str(offset)})
        try:
            response = self._request_patch(entry, body, headers)
        finally:
            body.close()
        with response:
            self._check_offset(response, end)
        return end

    def _request_patch(self, entry: UploadEntry, body: Any, headers: dict[str, str]) -> requests.Response:
        """Send a PATCH; forget the upload when the server says it is gone or refused the whole file."""
        try:
            return self._transport.request("PATCH", entry.url, data=body, headers=headers)
        except ChecksumMismatchError as exc:
            if exc.status == 409:  # the server refused the whole file and dropped the upload
                self._store.forget_upload(self.key)
            raise  # 460: one chunk was corrupted; the next attempt resumes at the server's offset
        except UpdlError as exc:
            if exc.status in GONE:
                self._store.forget_upload(self.key)
            raise

    def _check_offset(self, response: requests.Response, end: int) -> None:
        new_offset = response.headers.get("Upload-Offset", "")
        if parse_count(new_offset) != end:
            raise UpdlError(
                f"{self._name}: the server answered Upload-Offset {new_offset[:40]!r} after {end} bytes",
                response=response,
            )

    def _patch(self, entry: UploadEntry, chunk: _Chunk, attempt: int, final: bool) -> FileInfo | None:
        """Send one chunk; the stored file when this PATCH completed the upload."""
        offset = chunk.offset
        headers = self._headers(
            **{
                "Content-Type": OFFSET_STREAM,
                "Upload-Offset": str(offset),
                "Upload-Checksum": f"{CHUNK_CHECKSUM} {base64.b64encode(chunk.digest).decode()}",
            }
        )
        if final:
            headers["Upload-Md5"] = chunk.running_md5
        body = _ChunkBody(
            chunk.data, lambda n: self._report(ProgressEvent(self._name, offset + n, self.key.size, attempt))
        )
        response = self._request_patch(entry, body, headers)
        with response:
            self._check_offset(response, chunk.end)
            return self._stored(response, chunk.end) if final else None

    def _check_unchanged(self, fileobj: BinaryIO) -> None:
        """Before the last PATCH: refuse to complete the upload if the file changed since it started.

        Against the key (what the bytes sent earlier, perhaps by another
        process, were read from) and against the state when this attempt
        opened the file (ctime too, which a same-size rewrite that kept the
        mtime still moves).
        """
        now = file_state(fileobj)
        if now is None or (now.size, now.mtime_ns) != (self.key.size, self.key.mtime_ns) or now != self._opened:
            raise SourceChangedError(
                f"{self._path} changed while it was being uploaded; nothing was "
                "stored: upload it again once it is complete"
            )

    def _abandon(self, entry: UploadEntry) -> None:
        self._store.forget_upload(self.key)
        with contextlib.suppress(UpdlError):  # it expires on the server anyway
            self._transport.request("DELETE", entry.url, headers=self._headers()).close()

    def _verified(self, stored: FileInfo, md5: str) -> FileInfo:
        """The stored file, if it is the one the client sent; never deletes anything."""
        if stored.md5 != md5 or stored.size != self.key.size:
            raise ChecksumMismatchError(
                f"checksum mismatch (the server stored md5 {stored.md5}, {stored.size} bytes; "
                f"the client sent md5 {md5}, {self.key.size} bytes)",
                expected=md5,
                actual=stored.md5,
            )
        if self._sha256 is not None and stored.sha256 is not None and stored.sha256 != self._sha256:
            raise ChecksumMismatchError(
                f"checksum mismatch (the server stored sha256 {stored.sha256}, the client sent {self._sha256})",
                expected=self._sha256,
                actual=stored.sha256,
            )
        return stored
