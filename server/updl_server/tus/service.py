"""Resumable uploads over tus 1.0: creation, appends, completion, termination, expiration.

Supported extensions: creation, creation-with-upload, checksum (``md5``,
``sha1``, ``sha256``, ``crc32`` per PATCH), termination, expiration. Routes live in
``tus.routes``; this module holds the protocol rules and the state machine.

**Stateless processes.** Everything about an upload (owner, name, length,
offset, expected MD5, expiry) is a catalog row and its bytes are in the blob
store's shared staging area, so each PATCH may reach a different server
process. A PATCH holds the staged upload exclusively (``staging.claim``; a
concurrent one gets 423), re-reads the row under the hold, appends, fsyncs,
and only then moves the catalog's offset with a compare-and-set (a losing
writer, impossible under the hold but checked anyway, gets 409). Bytes past
the catalog's offset — left by a process that died mid-PATCH — are cut off by
the next holder. A PATCH whose checksum fails (460), or whose client goes
away, is rolled back to where it started.

**Off the event loop, on every core.** A PATCH body is gathered into ~1 MiB
batches; each batch is appended to the staged file and fed to the running
whole-file MD5 in a worker thread, while a second thread feeds it to the
PATCH's ``Upload-Checksum`` digest and the event loop receives the next
batch. One batch is in flight at a time, so the order is kept and at most two
batches are in memory. When a PATCH starts at offset 0 with an ``md5``
checksum, that checksum *is* the running MD5 and is computed once.

**Integrity at completion.** The upload becomes a file exactly as ``POST
/upload`` does: the whole file's MD5 is compared with the MD5 the client
declared — the ``md5`` in the creation's ``Upload-Metadata`` (plain tus
clients) and/or the ``Upload-Md5`` header of the PATCH that completes the
upload (updl's extension: the client hashes while sending and reads the file
once) — and on a mismatch the answer is 409 (the same body as POST
/upload's) and nothing is kept: the upload is gone. With neither, the file is
stored as received (each PATCH's ``Upload-Checksum`` protected the transfer).
Then the staged bytes are promoted to a blob and recorded by
``uploads.record_committed`` (the commit half of the integrity order).
hashlib state cannot move between processes, so each process keeps the
running MD5 of uploads whose PATCHes it received in order; when the last
PATCH reaches a process that did not see them all (several workers, a
restart), the staged file is read once more to hash it — one extra
sequential read of the file, only in that case.

**After completion.** The upload's row becomes a *completion* (one
transaction) kept until it expires: ``HEAD`` answers it with the final
offset and the stored file's MD5, so a client that lost the last PATCH's
answer learns it is done instead of uploading again. (A process that dies
between recording the file and recording the completion leaves an upload
whose HEAD says "complete offset, no MD5" and whose staged bytes are gone;
its next PATCH gets 404 and the client starts over.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import math
import re
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..catalog import Catalog, FileRecord, TusCompletion, TusRecord, utcnow
from ..errors import HTTPError, bad_request, checksum_failed, too_large
from ..names import validate_name
from ..numbers import count_field
from ..pipeline import WorkerPipe
from ..receive import RequestBody
from ..storage import BlobStore, StagedUpload, StagedUploadGoneError, StagingBusyError
from ..uploads import record_committed

log = logging.getLogger("updl_server")

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,checksum,termination,expiration"
# Creation headers of extensions we do not offer, refused rather than ignored: ignoring
# ``Upload-Concat: partial`` stored one part of a parallel upload as the whole file.
UNSUPPORTED_CREATION = {"upload-concat": "concatenation",
                        "upload-defer-length": "creation-defer-length"}
# Stored with the upload and echoed by every HEAD; a name and an MD5 need under 2 KiB.
MAX_METADATA_BYTES = 8 * 1024


class Crc32:
    """CRC-32 (as zlib computes it) behind the ``update``/``digest`` interface of hashlib.

    Enough to catch a chunk damaged in transit, at about five times the speed of MD5;
    the whole file's MD5 still decides whether anything is stored. tusd offers it too.
    """

    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


CHECKSUMS: dict[str, Callable[[], Any]] = {
    "crc32": Crc32,
    "md5": lambda: hashlib.md5(usedforsecurity=False),
    "sha1": lambda: hashlib.sha1(usedforsecurity=False),
    "sha256": hashlib.sha256,
}
OFFSET_STREAM = "application/offset+octet-stream"
EXPIRY = timedelta(hours=24)  # after the last activity
SWEEP_INTERVAL_SECONDS = 60.0  # at most one opportunistic sweep per process per minute
HASH_CACHE_SIZE = 256  # running MD5s kept per process
_MD5_HEX = re.compile(r"^[0-9a-fA-F]{32}$")
_KEY = re.compile(r"^[^\s,]+$")


@dataclass(frozen=True)
class Checksum:
    """A PATCH's ``Upload-Checksum``: the algorithm and the digest of the body."""

    algorithm: str
    digest: bytes


def http_date(moment: datetime) -> str:
    """A catalog time as an RFC 9110 date (``Upload-Expires``)."""
    return format_datetime(moment.replace(tzinfo=UTC), usegmt=True)


def parse_metadata(header: str) -> dict[str, str]:
    """``Upload-Metadata`` (``key base64,key2 base64,key3``) into text values; 400 if malformed."""
    values: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, encoded = pair.partition(" ")
        if not _KEY.match(key) or key in values:
            raise bad_request("malformed Upload-Metadata", upload_metadata=header)
        try:
            values[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise bad_request(f"Upload-Metadata {key!r} is not base64 of UTF-8 text") from None
    return values


def refuse_unsupported(request: Request) -> None:
    """Before anything is created: 400 for a creation that needs an extension this server
    lacks, 431 for an ``Upload-Metadata`` longer than ``MAX_METADATA_BYTES``."""
    for header, extension in UNSUPPORTED_CREATION.items():
        if header in request.headers:
            raise bad_request(f"{header.title()} needs the tus {extension!r} extension, which "
                              f"this server does not offer; upload the file as one upload",
                              supported=TUS_EXTENSIONS)
    size = len(request.headers.get("upload-metadata", "").encode("latin-1"))
    if size > MAX_METADATA_BYTES:
        raise HTTPError(431, f"Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes",
                        max_metadata_bytes=MAX_METADATA_BYTES, size=size)


def parse_checksum(header: str | None) -> Checksum | None:
    """``Upload-Checksum: <algorithm> <base64 digest>``; 400 for an unsupported or malformed one."""
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUMS:
        raise bad_request(f"unsupported checksum algorithm {algorithm!r}",
                          supported=",".join(CHECKSUMS))
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("malformed Upload-Checksum (expected: ALGORITHM BASE64)") from None
    return Checksum(algorithm, digest)


def parse_final_md5(header: str | None) -> str | None:
    """``Upload-Md5``: the whole file's MD5 (32 hex), on the completing PATCH; 400 if malformed."""
    if header is None:
        return None
    value = header.strip()
    if not _MD5_HEX.match(value):
        raise bad_request("Upload-Md5 must be the whole file's MD5 as 32 hex digits",
                          upload_md5=header)
    return value.lower()


def not_final(length: int) -> HTTPError:
    """400: ``Upload-Md5`` came on a PATCH that does not complete the upload."""
    return bad_request("Upload-Md5 belongs on the PATCH that completes the upload "
                       "(its body must end at Upload-Length)", length=length)


def header_int(request: Request, header: str) -> int:
    """A required non-negative integer header; 400 naming it (``Upload-Length``) otherwise."""
    field = "-".join(word.capitalize() for word in header.split("-"))
    return count_field(request.headers.get(header), field)


def offset_conflict(current: int, sent: int) -> HTTPError:
    """409: the PATCH is not at the upload's offset (HEAD tells where to continue)."""
    return HTTPError(409, "Upload-Offset does not match the upload's offset; HEAD it and resume",
                     offset=current, sent=sent)


def no_such_upload(upload_id: str) -> HTTPError:
    """404 for an unknown upload, or another user's (the two look the same)."""
    return HTTPError(404, "no such upload", upload=upload_id)


class _RunningHashes:
    """This process's running MD5 per upload, valid only at the offset it was saved at."""

    def __init__(self, size: int = HASH_CACHE_SIZE) -> None:
        self._entries: OrderedDict[str, tuple[int, Any]] = OrderedDict()
        self._size = size

    def resume(self, upload_id: str, offset: int) -> Any | None:
        """A copy of the MD5 of bytes ``[0, offset)``, or ``None`` when this process lacks it."""
        if offset == 0:
            return hashlib.md5(usedforsecurity=False)
        entry = self._entries.get(upload_id)
        if entry is None or entry[0] != offset:
            return None
        return entry[1].copy()

    def save(self, upload_id: str, offset: int, digest: Any) -> None:
        """Remember ``digest`` as the MD5 of ``[0, offset)``."""
        self._entries[upload_id] = (offset, digest)
        self._entries.move_to_end(upload_id)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def forget(self, upload_id: str) -> None:
        """Drop an upload's entry."""
        self._entries.pop(upload_id, None)


class TusService:
    """The tus state machine over a catalog and a blob store's staging area."""

    def __init__(self, catalog: Catalog, store: BlobStore, max_size: int,
                 stall_timeout: float = 60.0) -> None:
        """Serve uploads of at most ``max_size`` bytes.

        ``stall_timeout`` is the server's body timeout: a PATCH that stalls lets
        go of its upload by then, so a 423 tells the client to retry after it.
        """
        self.catalog = catalog
        self.store = store
        self.max_size = max_size
        self.stall_timeout = stall_timeout
        self._hashes = _RunningHashes()
        self._last_sweep = time.monotonic()

    async def create(self, owner: int, request: Request) -> TusRecord:
        """Validate a creation request (``refuse_unsupported`` first) and make the upload."""
        length = header_int(request, "upload-length")
        if length > self.max_size:
            raise too_large(self.max_size)
        raw_metadata = request.headers.get("upload-metadata", "")
        metadata = parse_metadata(raw_metadata)
        name = metadata.get("name") or metadata.get("filename")
        if not name:
            raise bad_request("Upload-Metadata needs a 'name' (or 'filename') to store under")
        validate_name(name)
        md5 = metadata.get("md5")
        if md5 is not None and not _MD5_HEX.match(md5):
            raise bad_request("md5 in Upload-Metadata must be 32 hex digits", md5=md5)
        now = utcnow()
        record = TusRecord(uuid.uuid4().hex, owner, name, length, 0,
                           None if md5 is None else md5.lower(), raw_metadata, now, now + EXPIRY)
        # Staging first, row second: a crash in between leaves only a file the sweep removes.
        await run_in_threadpool(self.store.staging.create, record.id)
        try:
            await run_in_threadpool(self.catalog.add_tus_upload, record)
        except Exception:
            await run_in_threadpool(self._discard_staged, record.id)  # no row will ever own it
            raise
        if time.monotonic() - self._last_sweep > SWEEP_INTERVAL_SECONDS:
            self._last_sweep = time.monotonic()
            await run_in_threadpool(self.sweep)
        return record

    async def find(self, owner: int, upload_id: str) -> TusRecord | TusCompletion:
        """The caller's upload, or its completion once finished.

        404 if unknown, another user's, or a completion that expired; 410 (and
        removed) if an unfinished upload expired.
        """
        record = await run_in_threadpool(self.catalog.tus_upload, upload_id)
        if record is None:
            done = await run_in_threadpool(self.catalog.tus_completion, upload_id)
            if done is None or done.owner_id != owner or done.expires <= utcnow():
                raise no_such_upload(upload_id)
            return done
        if record.owner_id != owner:
            raise no_such_upload(upload_id)
        if record.expires <= utcnow():
            await run_in_threadpool(self._remove_expired, upload_id)
            raise HTTPError(410, "upload expired", upload=upload_id)
        return record

    async def append(self, record: TusRecord, offset: int, checksum: Checksum | None,
                     body: RequestBody,
                     final_md5: str | None = None) -> tuple[TusRecord, FileRecord | None]:
        """Append one PATCH body at ``offset``; complete the upload when it reaches the length.

        ``final_md5`` (``Upload-Md5``) is only allowed when this body completes
        the upload (400 otherwise, and the body is not kept). Returns the
        updated upload and, once complete, the stored file.
        """
        if offset != record.offset:
            raise offset_conflict(record.offset, offset)
        held = await self._claim(record.id)
        try:
            current = await run_in_threadpool(self.catalog.tus_upload, record.id)
            if current is None:
                raise no_such_upload(record.id)
            if current.offset != offset:
                raise offset_conflict(current.offset, offset)
            record = await self._write(held, current, checksum, body, final_md5 is not None)
            if record.offset < record.length:
                return record, None
            return record, await self._complete(held, record, final_md5)
        finally:
            await run_in_threadpool(held.close)  # on S3 a request (the hold object)

    async def complete_empty(self, record: TusRecord, final_md5: str | None = None) -> FileRecord:
        """Store a zero-length upload right at creation."""
        held = await self._claim(record.id)
        try:
            return await self._complete(held, record, final_md5)
        finally:
            await run_in_threadpool(held.close)

    async def terminate(self, upload: TusRecord | TusCompletion) -> None:
        """Delete an upload and its staged bytes (423 while a PATCH is writing to it).

        A completion is only forgotten: the file it stored stays.
        """
        if isinstance(upload, TusCompletion):
            await run_in_threadpool(self.catalog.delete_tus_completion, upload.id)
            return
        held = await self._claim(upload.id)
        try:
            await run_in_threadpool(self.catalog.delete_tus_upload, upload.id)
            await run_in_threadpool(held.discard)
            self._hashes.forget(upload.id)
        finally:
            await run_in_threadpool(held.close)

    def sweep(self) -> int:
        """Remove expired uploads (not being written) and staged bytes no row owns; return how many.

        Expired completions are forgotten too (not counted).
        """
        removed = 0
        now = utcnow()
        for upload_id in self.catalog.expired_tus_uploads(now):
            removed += self._remove_expired(upload_id)
        self.catalog.delete_expired_tus_completions(now)
        return removed + self.store.staging.sweep(self.catalog.has_tus_upload)

    # internals

    async def _claim(self, upload_id: str) -> StagedUpload:
        try:
            return await run_in_threadpool(self.store.staging.claim, upload_id)
        except StagingBusyError:
            retry_after = math.ceil(self.stall_timeout)
            raise HTTPError(423, f"another request is writing to this upload; try again shortly "
                                 f"(one that stalled lets go within {retry_after} s)",
                            headers={"Retry-After": str(retry_after)}, upload=upload_id) from None
        except StagedUploadGoneError:
            await run_in_threadpool(self.catalog.delete_tus_upload, upload_id)
            raise no_such_upload(upload_id) from None

    async def _write(self, held: StagedUpload, record: TusRecord, checksum: Checksum | None,
                     body: RequestBody, must_complete: bool) -> TusRecord:
        """Append the body under the hold; roll back on any failure; advance the catalog."""
        start = record.offset
        staged = held.size()
        if staged < start:
            log.error("tus upload %s: %d bytes staged, catalog says %d", record.id, staged, start)
            raise HTTPError(500, "internal server error")
        if staged > start:
            # a dead writer's bytes the catalog never counted
            await run_in_threadpool(held.truncate, start)
        check = None if checksum is None else CHECKSUMS[checksum.algorithm]()
        whole = self._hashes.resume(record.id, start)
        if start == 0 and checksum is not None and checksum.algorithm == "md5":
            whole = check  # from offset 0 the body's MD5 is the whole file's so far: hash once
        digests = [d for d in (check, whole) if d is not None]
        if len(digests) == 2 and digests[0] is digests[1]:
            digests.pop()
        pipe = WorkerPipe(held.append, digests)
        received = 0
        try:
            async for chunk in body.chunks():
                received += len(chunk)
                if start + received > record.length:
                    raise bad_request("the body goes past Upload-Length", length=record.length)
                pipe.add(chunk)
                await pipe.pump()
            await pipe.finish()
            if must_complete and start + received != record.length:
                raise not_final(record.length)
            if checksum is not None and check is not None and check.digest() != checksum.digest:
                raise HTTPError(460, "checksum mismatch: the body does not match Upload-Checksum",
                                algorithm=checksum.algorithm, offset=start)
            await run_in_threadpool(held.sync)  # durable before the catalog counts it
            expires = utcnow() + EXPIRY
            if not await run_in_threadpool(self.catalog.advance_tus_upload, record.id, start,
                                           start + received, expires):
                raise HTTPError(409, "the upload moved on concurrently; HEAD it and resume",
                                sent=start)
        except BaseException:
            # 460/400/409, a client that went away, cancellation: the offset stays where it was.
            pipe.settle()  # at most one batch in flight: a few milliseconds
            await run_in_threadpool(held.truncate, start)
            raise
        if whole is not None:
            self._hashes.save(record.id, start + received, whole)
        return replace(record, offset=start + received, expires=expires)

    async def _complete(self, held: StagedUpload, record: TusRecord,
                        final_md5: str | None) -> FileRecord:
        """Verify the whole file's MD5, promote the staged bytes and record the file."""
        whole = self._hashes.resume(record.id, record.offset)
        self._hashes.forget(record.id)
        if whole is not None:
            md5 = whole.hexdigest()
        else:
            md5 = await run_in_threadpool(_md5_of, held.chunks())  # the extra read, see above
        for declared in (record.md5, final_md5):
            if declared is not None and md5 != declared:
                await run_in_threadpool(self.catalog.delete_tus_upload, record.id)
                await run_in_threadpool(held.discard)
                raise checksum_failed(declared, md5)
        location = await run_in_threadpool(held.promote, record.owner_id)
        try:
            stored = await record_committed(self.store, self.catalog, record.owner_id,
                                            record.name, record.length, md5, location)
        except BaseException:
            await run_in_threadpool(self.catalog.delete_tus_upload, record.id)
            raise
        await run_in_threadpool(self.catalog.complete_tus_upload, record.id, stored.md5,
                                stored.created, utcnow() + EXPIRY)
        return stored

    def _discard_staged(self, upload_id: str) -> None:
        """Delete the staged bytes of an upload that has no row (a failed creation)."""
        held = self.store.staging.claim(upload_id)
        try:
            held.discard()
        finally:
            held.close()

    def _remove_expired(self, upload_id: str) -> int:
        """Delete an expired upload unless a request holds it or it was renewed; 1 if deleted."""
        try:
            held = self.store.staging.claim(upload_id)
        except StagingBusyError:
            return 0
        except StagedUploadGoneError:
            self.catalog.delete_tus_upload(upload_id)
            return 1
        try:
            current = self.catalog.tus_upload(upload_id)
            if current is not None and current.expires > utcnow():
                return 0  # renewed by a PATCH since it was found expired
            self.catalog.delete_tus_upload(upload_id)
            held.discard()
            self._hashes.forget(upload_id)
            return 1
        finally:
            held.close()


def _md5_of(chunks: Iterable[bytes]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()
