"""One file as parallel tus parts, joined by the server (tus Concatenation).

``updl put --parts N`` (``Client.upload(parts=N)``, config ``parallel_parts``)
splits the file into N ranges, each a multiple of the PATCH size (so on S3
every part but the last is made of whole 8 MiB PATCHes and the server can
compose the file without moving a byte). Each range is a partial upload
(``Upload-Concat: partial``) sent by its own thread over its own connection,
in checksummed PATCHes exactly like :mod:`updl.sdk.tus`. When all are
complete, one ``POST /tus/`` with ``Upload-Concat: final;<urls>`` names the
file and carries the whole file's MD5 (``md5`` metadata and ``Upload-Md5``):
the server computes the MD5 of the joined parts and stores the file only if
they agree (on a mismatch it drops the parts and keeps nothing).

**The whole file's MD5.** MD5 cannot be combined from the MD5s of pieces, so
one more thread reads the file from the start and hashes it while the parts
are sent: the file is read twice (the second read is usually served by the
page cache), on another core. It is computed once per attempt.

**Resuming.** Each part's URL goes into the resume store under the file's key
with the part (index and count) appended to the name, after a newline no
file name can contain. A rerun with the same ``--parts`` HEADs each part and
sends only what the server lacks; parts the server no longer knows are made
anew. A different part count starts over (the old parts expire on the server).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from .attributes import FileAttributes
from .errors import ChecksumMismatchError, SourceChangedError, UpdlError
from .hashing import digest_file, file_state
from .headers import file_info, parse_count, stored_md5
from .models import FileInfo
from .progress import ProgressCallback, ProgressEvent
from .resume import DEFAULT_UPLOAD_TTL, ResumeStore, UploadEntry, UploadKey
from .transport import Transport
from .tus import GONE, OFFSET_STREAM, TUS_VERSION, _chunk_digest, _ChunkBody, upload_metadata

__all__ = ["MAX_PARTS", "PartedUpload", "part_ranges"]

MAX_PARTS = 8
HASH_CHUNK = 8 * 1024 * 1024


PART_CHUNK_SIZE = 8 * 1024 * 1024  # bytes per PATCH of a part when resumable_chunk_size is 0 (streamed)


def part_ranges(size: int, parts: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[start, end)`` of up to ``parts`` ranges covering ``size``, each but the last a multiple of
    ``chunk_size`` (fewer ranges when the file has fewer chunks)."""
    chunks = max(1, math.ceil(size / chunk_size))
    per_part = math.ceil(chunks / max(1, min(parts, chunks))) * chunk_size
    return [(start, min(start + per_part, size)) for start in range(0, max(size, 1), per_part)]


@dataclass
class _Part:
    index: int
    start: int
    end: int
    key: UploadKey
    url: str = ""
    sent: int = 0  # bytes of this part the server has


class PartedUpload:
    """One attempt at uploading one file as parallel parts; call :meth:`run` per retry attempt."""

    def __init__(
        self,
        transport: Transport,
        store: ResumeStore,
        path: Path,
        name: str,
        chunk_size: int,
        parts: int,
        report: ProgressCallback,
        expires_in: int | None = None,
        attributes: FileAttributes | None = None,
        *,
        sha256: str | None = None,
    ) -> None:
        """Prepare to upload ``path`` as ``name`` in up to ``parts`` parallel parts of ``chunk_size`` PATCHes,
        recording ``attributes`` (mode, mtime) and claiming ``sha256`` (if known) with the final upload."""
        if not 1 <= parts <= MAX_PARTS:
            raise ValueError(f"parts must be 1 to {MAX_PARTS}, got {parts}")
        self._transport = transport
        self._store = store
        self._path = path
        self._name = name
        self._chunk_size = chunk_size
        self._count = parts
        self._report = report
        self._expires_in = expires_in  # sent with the final upload, which names the file
        self._attributes = attributes  # likewise
        self._sha256 = sha256  # likewise
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._attempt = 1

    def run(self, attempt: int) -> FileInfo:
        """Create or resume every part, send them in parallel, then ask the server to join them."""
        self._attempt = attempt
        if attempt > 1 and self._sha256 is not None:  # known before the first attempt: may be stale now
            self._sha256 = digest_file(self._path, ("sha256",))["sha256"]
        self._stop.clear()
        key = UploadKey.for_file(self._transport.base_url, self._name, self._path)
        ranges = part_ranges(key.size, self._count, self._chunk_size)
        parts = [_Part(i, a, b, _part_key(key, i, len(ranges))) for i, (a, b) in enumerate(ranges)]
        with self._path.open("rb") as fileobj:
            opened = file_state(fileobj)
        for part in parts:  # first, so the first progress event says how much an earlier run sent
            part.sent = self._resume_or_create(part)
        self._progress(parts)
        with ThreadPoolExecutor(len(parts) + 1, thread_name_prefix="updl-part") as pool:
            md5_future = pool.submit(self._md5, key.size)
            futures = [pool.submit(self._send_part, part, parts) for part in parts]
            try:
                for future in futures:
                    future.result()
                md5 = md5_future.result()
            finally:
                self._stop.set()  # one part failed: the others stop after their current PATCH
        with self._path.open("rb") as fileobj:
            now = file_state(fileobj)
        if now is None or now != opened or (now.size, now.mtime_ns) != (key.size, key.mtime_ns):
            for part in parts:
                self._store.forget_upload(part.key)
            raise SourceChangedError(
                f"{self._path} changed while it was being uploaded; nothing was stored: "
                "upload it again once it is complete"
            )
        stored = self._final(parts, md5, key.size)
        for part in parts:
            self._store.forget_upload(part.key)
        if stored.md5 != md5 or stored.size != key.size:
            raise ChecksumMismatchError(
                f"checksum mismatch (the server stored md5 {stored.md5}, {stored.size} bytes; "
                f"the client sent md5 {md5}, {key.size} bytes)",
                expected=md5,
                actual=stored.md5,
            )
        return stored

    # -- the threads ----------------------------------------------------------------------

    def _md5(self, size: int) -> str:
        """The whole file's MD5, read from the start in its own thread (see the module docstring)."""
        digest = hashlib.md5(usedforsecurity=False)
        with self._path.open("rb") as fileobj:
            remaining = size
            while remaining > 0:
                if self._stop.is_set():
                    raise UpdlError(f"{self._name}: upload stopped")
                data = fileobj.read(min(HASH_CHUNK, remaining))
                if not data:
                    raise SourceChangedError(f"{self._path} shrank while it was being uploaded")
                digest.update(data)
                remaining -= len(data)
        return digest.hexdigest()

    def _send_part(self, part: _Part, parts: list[_Part]) -> None:
        """PATCH the rest of the part's range (from what the server has)."""
        with self._path.open("rb") as fileobj:
            while part.start + part.sent < part.end:
                if self._stop.is_set():
                    return
                offset = part.sent
                fileobj.seek(part.start + offset)
                data = fileobj.read(min(self._chunk_size, part.end - part.start - offset))
                if not data:
                    raise SourceChangedError(f"{self._path} shrank while it was being uploaded")
                self._patch(part, offset, data, parts)
                part.sent = offset + len(data)
                self._progress(parts)

    # -- protocol -------------------------------------------------------------------------

    def _headers(self, **extra: str) -> dict[str, str]:
        return {"Tus-Resumable": TUS_VERSION, **extra}

    def _resume_or_create(self, part: _Part) -> int:
        entry = self._store.upload(part.key)
        if entry is not None:
            try:
                with self._transport.request("HEAD", entry.url, headers=self._headers()) as response:
                    offset = parse_count(response.headers.get("Upload-Offset"))
                if offset is not None and response.headers.get("Upload-Concat") == "partial":
                    part.url = entry.url
                    return offset
            except UpdlError as exc:
                if exc.status not in GONE:
                    raise
            self._store.forget_upload(part.key)
        headers = self._headers(**{"Upload-Length": str(part.end - part.start), "Upload-Concat": "partial"})
        with self._transport.request("POST", "/tus/", headers=headers) as response:
            part.url = self._relative(response.headers.get("Location", ""))
        self._store.remember_upload(part.key, UploadEntry(part.url, time.time() + DEFAULT_UPLOAD_TTL))
        return 0

    def _patch(self, part: _Part, offset: int, data: bytes, parts: list[_Part]) -> None:
        digest = base64.b64encode(_chunk_digest(data)).decode()
        headers = self._headers(
            **{"Content-Type": OFFSET_STREAM, "Upload-Offset": str(offset), "Upload-Checksum": f"crc32 {digest}"}
        )

        def on_read(count: int) -> None:
            part.sent = offset + count
            self._progress(parts)

        try:
            response = self._transport.request("PATCH", part.url, data=_ChunkBody(data, on_read), headers=headers)
        except UpdlError as exc:
            part.sent = offset
            if exc.status in GONE:
                self._store.forget_upload(part.key)
            raise
        with response:
            answered = parse_count(response.headers.get("Upload-Offset"))
        if answered != offset + len(data):
            raise UpdlError(f"{self._name}: the server answered Upload-Offset {answered} after {offset + len(data)}")

    def _final(self, parts: list[_Part], md5: str, size: int) -> FileInfo:
        """``Upload-Concat: final``: the server joins the parts, checks the MD5 and stores the file."""
        metadata = upload_metadata(self._name, self._attributes, self._expires_in, md5, self._sha256)
        headers = self._headers(
            **{
                "Upload-Concat": "final;" + " ".join(part.url for part in parts),
                "Upload-Metadata": metadata,
                "Upload-Md5": md5,
            }
        )
        try:
            response = self._transport.request("POST", "/tus/", headers=headers)
        except ChecksumMismatchError:
            for part in parts:  # the server dropped the parts: the retry starts over
                self._store.forget_upload(part.key)
            raise
        with response:
            stored = stored_md5(response)
            if stored is None:
                raise UpdlError(f"{self._name}: the server joined the parts without reporting the stored MD5")
            return file_info(response, self._name, size, stored)

    def _relative(self, location: str) -> str:
        base = self._transport.base_url
        full = urljoin(base + "/tus/", location)
        return full[len(base) :] if full.startswith(base + "/") else urlsplit(full).path

    def _progress(self, parts: list[_Part]) -> None:
        with self._lock:
            total = sum(part.end - part.start for part in parts)
            self._report(ProgressEvent(self._name, sum(part.sent for part in parts), total, self._attempt))


def _part_key(key: UploadKey, index: int, count: int) -> UploadKey:
    """The resume-store key of one part: the file's key, the part appended to the name."""
    return dataclasses.replace(key, name=f"{key.name}\npart {index + 1}/{count}")
