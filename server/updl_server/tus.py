"""Resumable uploads over tus 1.0: creation, appends, completion, termination, expiration.

Supported extensions: creation, creation-with-upload, checksum (``md5``,
``sha1``, ``sha256`` per PATCH), termination, expiration. Routes live in
``tus_routes``; this module holds the protocol rules and the state machine.

**Stateless processes.** Everything about an upload (owner, name, length,
offset, expected MD5, expiry) is a catalog row and its bytes are in the blob
store's shared staging area, so each PATCH may reach a different server
process. A PATCH holds the staged upload exclusively (``stage_claim``; a
concurrent one gets 423), re-reads the row under the hold, appends, fsyncs,
and only then moves the catalog's offset with a compare-and-set (a losing
writer, impossible under the hold but checked anyway, gets 409). Bytes past
the catalog's offset — left by a process that died mid-PATCH — are cut off by
the next holder. A PATCH whose checksum fails (460), or whose client goes
away, is rolled back to where it started.

**Integrity at completion.** The upload becomes a file exactly as ``POST
/upload`` does: the whole file's MD5 is compared with the ``md5`` the
creation request declared in ``Upload-Metadata`` (409, the same body as POST
/upload's, and nothing is kept — the upload is gone), then the staged bytes
are promoted to a blob and recorded by ``uploads.record_committed`` (the
commit half of the integrity order). hashlib state cannot move between
processes, so each process keeps the running MD5 of uploads whose PATCHes it
received in order; when the last PATCH reaches a process that did not see
them all (several workers, a restart), the staged file is read once more to
hash it — one extra sequential read of the file, only in that case.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from .blobstore import BlobStore
from .catalog import Catalog, FileRecord, TusRecord, utcnow
from .errors import HTTPError, bad_request, checksum_failed, too_large
from .names import validate_name
from .receive import RequestBody
from .staging import StagedUpload, StagedUploadGoneError, StagingBusyError
from .uploads import record_committed

log = logging.getLogger("updl_server")

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,checksum,termination,expiration"
CHECKSUMS: dict[str, Callable[[], Any]] = {
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


def header_int(request: Request, header: str) -> int:
    """A required non-negative integer header; 400 otherwise."""
    raw = request.headers.get(header)
    if raw is None or not raw.strip().isdigit():
        raise bad_request(f"{header} must be a non-negative integer", **{header: raw})
    return int(raw)


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

    def __init__(self, catalog: Catalog, store: BlobStore, max_size: int) -> None:
        """Serve uploads of at most ``max_size`` bytes."""
        self.catalog = catalog
        self.store = store
        self.max_size = max_size
        self._hashes = _RunningHashes()
        self._last_sweep = time.monotonic()

    async def create(self, owner: int, request: Request) -> TusRecord:
        """Validate a creation request and make the (empty) upload."""
        if "upload-defer-length" in request.headers:
            raise bad_request("Upload-Defer-Length is not supported; send Upload-Length")
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
        await run_in_threadpool(self.store.stage_create, record.id)
        await run_in_threadpool(self.catalog.add_tus_upload, record)
        if time.monotonic() - self._last_sweep > SWEEP_INTERVAL_SECONDS:
            self._last_sweep = time.monotonic()
            await run_in_threadpool(self.sweep)
        return record

    async def live(self, owner: int, upload_id: str) -> TusRecord:
        """The caller's upload: 404 if unknown or another user's, 410 (and removed) if expired."""
        record = await run_in_threadpool(self.catalog.tus_upload, upload_id)
        if record is None or record.owner_id != owner:
            raise no_such_upload(upload_id)
        if record.expires <= utcnow():
            await run_in_threadpool(self._remove_expired, upload_id)
            raise HTTPError(410, "upload expired", upload=upload_id)
        return record

    async def append(self, record: TusRecord, offset: int, checksum: Checksum | None,
                     body: RequestBody) -> tuple[TusRecord, FileRecord | None]:
        """Append one PATCH body at ``offset``; complete the upload when it reaches the length.

        Returns the updated upload and, once complete, the stored file.
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
            record = await self._write(held, current, checksum, body)
            if record.offset < record.length:
                return record, None
            return record, await self._complete(held, record)
        finally:
            held.close()

    async def complete_empty(self, record: TusRecord) -> FileRecord:
        """Store a zero-length upload right at creation."""
        held = await self._claim(record.id)
        try:
            return await self._complete(held, record)
        finally:
            held.close()

    async def terminate(self, record: TusRecord) -> None:
        """Delete an upload and its staged bytes (423 while a PATCH is writing to it)."""
        held = await self._claim(record.id)
        try:
            await run_in_threadpool(self.catalog.delete_tus_upload, record.id)
            held.discard()
            self._hashes.forget(record.id)
        finally:
            held.close()

    def sweep(self) -> int:
        """Remove expired uploads (not being written) and staged bytes no row owns; return how many."""
        removed = 0
        for upload_id in self.catalog.expired_tus_uploads(utcnow()):
            removed += self._remove_expired(upload_id)
        return removed + self.store.stage_sweep(self.catalog.has_tus_upload)

    # internals

    async def _claim(self, upload_id: str) -> StagedUpload:
        try:
            return await run_in_threadpool(self.store.stage_claim, upload_id)
        except StagingBusyError:
            raise HTTPError(423, "another request is writing to this upload; try again shortly",
                            upload=upload_id) from None
        except StagedUploadGoneError:
            await run_in_threadpool(self.catalog.delete_tus_upload, upload_id)
            raise no_such_upload(upload_id) from None

    async def _write(self, held: StagedUpload, record: TusRecord, checksum: Checksum | None,
                     body: RequestBody) -> TusRecord:
        """Append the body under the hold; roll back on any failure; advance the catalog."""
        start = record.offset
        staged = held.size()
        if staged < start:
            log.error("tus upload %s: %d bytes staged, catalog says %d", record.id, staged, start)
            raise HTTPError(500, "internal server error")
        if staged > start:
            held.truncate(start)  # a dead writer's bytes the catalog never counted
        check = None if checksum is None else CHECKSUMS[checksum.algorithm]()
        whole = self._hashes.resume(record.id, start)
        received = 0
        try:
            async for chunk in body.chunks():
                received += len(chunk)
                if start + received > record.length:
                    raise bad_request("the body goes past Upload-Length", length=record.length)
                held.append(chunk)
                if check is not None:
                    check.update(chunk)
                if whole is not None:
                    whole.update(chunk)
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
            held.truncate(start)
            raise
        if whole is not None:
            self._hashes.save(record.id, start + received, whole)
        return replace(record, offset=start + received, expires=expires)

    async def _complete(self, held: StagedUpload, record: TusRecord) -> FileRecord:
        """Verify the whole file's MD5, promote the staged bytes and record the file."""
        whole = self._hashes.resume(record.id, record.offset)
        self._hashes.forget(record.id)
        if whole is not None:
            md5 = whole.hexdigest()
        else:
            md5 = await run_in_threadpool(_md5_of, held.chunks())  # the extra read, see above
        if record.md5 is not None and md5 != record.md5:
            await run_in_threadpool(self.catalog.delete_tus_upload, record.id)
            held.discard()
            raise checksum_failed(record.md5, md5)
        location = await run_in_threadpool(held.promote)
        try:
            return await record_committed(self.store, self.catalog, record.owner_id, record.name,
                                          record.length, md5, location)
        finally:
            await run_in_threadpool(self.catalog.delete_tus_upload, record.id)

    def _remove_expired(self, upload_id: str) -> int:
        """Delete an expired upload unless a request holds it or it was renewed; 1 if deleted."""
        try:
            held = self.store.stage_claim(upload_id)
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
