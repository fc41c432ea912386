"""The tus state machine: creation, appends, completion, termination, expiration.

It sees values, never an HTTP request: the routes (:mod:`.routes`) parse
headers with :mod:`.protocol` and hand over the body as a stream of chunks.

**Stateless processes.** Everything about an upload (owner, name, length,
offset, expected MD5, expiry) is a catalog row and its bytes are in the blob
store's shared staging area, so each PATCH may reach a different server
process. A PATCH holds the staged upload exclusively (``staging.claim``; a
concurrent one gets 423), re-reads the row under the hold, appends, fsyncs,
and only then moves the catalog's offset with a compare-and-set (a losing
writer, impossible under the hold but checked anyway, gets 409). Bytes past
the catalog's offset — left by a process that died mid-PATCH — are cut off by
the next holder. A PATCH with an ``Upload-Checksum`` is all or nothing: if
its checksum fails (460) or its client goes away, it is rolled back to where
it started (the checksum covers the whole body).

**Keeping what a PATCH delivered.** A PATCH without a checksum (tus-js-client
and tuspy by default, one PATCH for the whole file) keeps what it received,
as the tus core recommends: every ``CHECKPOINT_BYTES`` the bytes so far are
made durable and the catalog's offset moves to them (a crash loses at most
that much), and when the client goes away or stalls (the body timeout turns a
stall into a disconnect) what was received is made durable (``keep``: on S3,
a tail under one 5 MiB part is dropped) and counted before the upload is let
go. The offset never counts a byte that is not durable. A PATCH refused for
its content (400, 409) or failing on the server's side falls back to the
last offset counted. The whole file's MD5 still decides the completion.

**Off the event loop, on every core.** A PATCH body is gathered into ~1 MiB
batches; each batch is appended to the staged file in a worker thread while
other threads feed it to the running whole-file MD5 and to the PATCH's
``Upload-Checksum`` digest, and the event loop receives the next batch
(:mod:`updl_server.pipeline`). One batch is in flight at a time, so the
order is kept and at most two batches are in memory. When a PATCH starts at offset 0 with an ``md5``
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

import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Any, Protocol

from anyio import to_thread

from .. import audit, metrics, quotas
from ..catalog import Catalog, FileRecord, TusCompletion, TusRecord, utcnow
from ..errors import HTTPError, checksum_failed
from ..pipeline import WorkerPipe
from ..storage import BlobStore, StagedUpload, StagedUploadGoneError, StagingBusyError
from ..uploads import record_committed
from .protocol import (
    CHECKSUMS,
    Checksum,
    NewUpload,
    checksum_mismatch,
    expires_in_of,
    metadata_attributes,
    moved_on,
    no_such_upload,
    not_final,
    offset_conflict,
    parse_metadata,
    past_length,
    upload_busy,
    upload_expired,
)

log = logging.getLogger("updl_server")

EXPIRY = timedelta(hours=24)  # after the last activity
SWEEP_INTERVAL_SECONDS = 60.0  # at most one opportunistic sweep per process per minute
HASH_CACHE_SIZE = 256  # running MD5s kept per process
CHECKPOINT_BYTES = 64 * 1024 * 1024  # a PATCH without a checksum is made durable and counted this often


class Body(Protocol):
    """A PATCH body as the state machine reads it (the routes pass a ``RequestBody``)."""

    gone: bool  # set when the client went away (or stalled) before the body's end

    def chunks(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk; raises once the client is gone."""


class _RunningHashes:
    """This process's running MD5 (or SHA-256) per upload, valid only at the offset it was saved at."""

    def __init__(self, size: int = HASH_CACHE_SIZE, algorithm: str = "md5") -> None:
        self._entries: OrderedDict[str, tuple[int, Any]] = OrderedDict()
        self._size = size
        self._algorithm = algorithm

    def resume(self, upload_id: str, offset: int) -> Any | None:
        """A copy of the digest of bytes ``[0, offset)``, or ``None`` when this process lacks it."""
        if offset == 0:
            return hashlib.new(self._algorithm, usedforsecurity=False)
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

    def __init__(
        self,
        catalog: Catalog,
        store: BlobStore,
        max_size: int,
        stall_timeout: float = 60.0,
        default_retention: int | None = None,
    ) -> None:
        """Serve uploads of at most ``max_size`` bytes (kept ``default_retention`` seconds, if set).

        ``stall_timeout`` is the server's body timeout: a PATCH that stalls lets
        go of its upload by then, so a 423 tells the client to retry after it.
        """
        self.catalog = catalog
        self.store = store
        self.max_size = max_size
        self.stall_timeout = stall_timeout
        self.default_retention = default_retention
        self._hashes = _RunningHashes()
        self._sha256s = _RunningHashes(algorithm="sha256")
        self._last_sweep = time.monotonic()

    async def create(self, owner: int, new: NewUpload) -> TusRecord:
        """Make the upload a creation request asked for (validated by ``parse_creation``).

        507 at once, before anything is staged, when the owner's quota has no room for it.
        """
        await quotas.prepare(self.catalog, owner, self.default_retention, new.expires_in, new.name, new.length)
        now = utcnow()
        record = TusRecord(
            uuid.uuid4().hex,
            owner,
            new.name,
            new.length,
            0,
            new.md5,
            new.metadata,
            now,
            now + EXPIRY,
            partial=new.partial,
            sha256=new.sha256,
        )
        # Staging first, row second: a crash in between leaves only a file the sweep removes.
        await to_thread.run_sync(self.store.staging.create, record.id)
        try:
            await to_thread.run_sync(self.catalog.add_tus_upload, record)
        except Exception:
            await to_thread.run_sync(self._discard_staged, record.id)  # no row will ever own it
            raise
        if time.monotonic() - self._last_sweep > SWEEP_INTERVAL_SECONDS:
            self._last_sweep = time.monotonic()
            await to_thread.run_sync(self.sweep)
        return record

    async def find(self, owner: int, upload_id: str) -> TusRecord | TusCompletion:
        """The caller's upload, or its completion once finished.

        404 if unknown, another user's, or a completion that expired; 410 (and
        removed) if an unfinished upload expired.
        """
        record = await to_thread.run_sync(self.catalog.tus_upload, upload_id)
        if record is None:
            done = await to_thread.run_sync(self.catalog.tus_completion, upload_id)
            if done is None or done.owner_id != owner or done.expires <= utcnow():
                raise no_such_upload(upload_id)
            return done
        if record.owner_id != owner:
            raise no_such_upload(upload_id)
        if record.expires <= utcnow():
            await to_thread.run_sync(self._remove_expired, upload_id)
            raise upload_expired(upload_id)
        return record

    async def append(
        self, record: TusRecord, offset: int, checksum: Checksum | None, body: Body, final_md5: str | None = None
    ) -> tuple[TusRecord, FileRecord | None]:
        """Append one PATCH body at ``offset``; complete the upload when it reaches the length.

        ``final_md5`` (``Upload-Md5``) is only allowed when this body completes
        the upload (400 otherwise, and the body is not kept). Returns the
        updated upload and, once complete, the stored file.
        """
        if offset != record.offset:
            raise offset_conflict(record.offset, offset)
        held = await self._claim(record.id)
        try:
            current = await to_thread.run_sync(self.catalog.tus_upload, record.id)
            if current is None:
                raise no_such_upload(record.id)
            if current.offset != offset:
                raise offset_conflict(current.offset, offset)
            record = await self._write(held, current, checksum, body, final_md5 is not None)
            if record.offset < record.length or record.partial:  # a complete part waits for its final
                return record, None
            return record, await self._complete(held, record, final_md5)
        finally:
            await to_thread.run_sync(held.close)  # on S3 a request (the hold object)

    async def complete_empty(self, record: TusRecord, final_md5: str | None = None) -> FileRecord:
        """Store a zero-length upload right at creation."""
        held = await self._claim(record.id)
        try:
            return await self._complete(held, record, final_md5)
        finally:
            await to_thread.run_sync(held.close)

    async def terminate(self, upload: TusRecord | TusCompletion) -> None:
        """Delete an upload and its staged bytes (423 while a PATCH is writing to it).

        A completion is only forgotten: the file it stored stays.
        """
        if isinstance(upload, TusCompletion):
            await to_thread.run_sync(self.catalog.delete_tus_completion, upload.id)
            return
        held = await self._claim(upload.id)
        try:
            await to_thread.run_sync(self.catalog.delete_tus_upload, upload.id)
            await to_thread.run_sync(held.discard)
            self._forget(upload.id)
        finally:
            await to_thread.run_sync(held.close)

    def sweep(self) -> int:
        """Remove expired uploads (not being written) and staged bytes no row owns; return how many.

        Expired completions are forgotten too (not counted).
        """
        removed = 0
        now = utcnow()
        for upload_id in self.catalog.expired_tus_uploads(now):
            removed += self._remove_expired(upload_id)
        self.catalog.delete_expired_tus_completions(now)
        removed += self.store.staging.sweep(self.catalog.has_tus_upload)
        metrics.swept(removed, kind="tus_upload")
        return removed

    # internals

    async def _claim(self, upload_id: str) -> StagedUpload:
        try:
            return await to_thread.run_sync(self.store.staging.claim, upload_id)
        except StagingBusyError:
            raise upload_busy(upload_id, self.stall_timeout) from None
        except StagedUploadGoneError:
            await to_thread.run_sync(self.catalog.delete_tus_upload, upload_id)
            raise no_such_upload(upload_id) from None

    async def _write(
        self, held: StagedUpload, record: TusRecord, checksum: Checksum | None, body: Body, must_complete: bool
    ) -> TusRecord:
        """Append the body under the hold and advance the catalog.

        With a checksum, any failure rolls back to the start. Without one, the
        offset is advanced at checkpoints and, on a disconnect, to what was
        received and made durable; other failures roll back to the last offset counted.
        """
        start = record.offset
        staged = held.size()
        if staged < start:
            log.error("tus upload %s: %d bytes staged, catalog says %d", record.id, staged, start)
            raise HTTPError(500, "internal server error")
        if staged > start:
            # a dead writer's bytes the catalog never counted
            await to_thread.run_sync(held.truncate, start)
        check = None if checksum is None else CHECKSUMS[checksum.algorithm]()
        whole = self._hashes.resume(record.id, start)
        strong = self._sha256s.resume(record.id, start)
        if start == 0 and checksum is not None and checksum.algorithm == "md5":
            whole = check  # from offset 0 the body's MD5 is the whole file's so far: hash once
        if start == 0 and checksum is not None and checksum.algorithm == "sha256":
            strong = check  # likewise for SHA-256
        digests: list[Any] = []
        for digest in (check, whole, strong):
            if digest is not None and all(digest is not d for d in digests):
                digests.append(digest)
        pipe = WorkerPipe(held.append, digests)
        partial = checksum is None  # only a body no checksum covers can be kept in part
        counted = start  # the catalog's offset: durable bytes
        received = 0
        try:
            async for chunk in body.chunks():
                received += len(chunk)
                if start + received > record.length:
                    raise past_length(record.length)
                pipe.add(chunk)
                await pipe.pump()
                if partial and start + received - counted >= CHECKPOINT_BYTES:
                    await pipe.finish()
                    counted = await self._count(held, record.id, counted)
            await pipe.finish()
            if must_complete and start + received != record.length:
                raise not_final(record.length)
            if checksum is not None and check is not None and check.digest() != checksum.digest:
                raise checksum_mismatch(checksum.algorithm, start)
            await to_thread.run_sync(held.sync)  # durable before the catalog counts it
            expires = utcnow() + EXPIRY
            if not await to_thread.run_sync(
                self.catalog.advance_tus_upload, record.id, counted, start + received, expires
            ):
                raise moved_on(counted)
        except BaseException:
            # 460/400/409, a client that went away, cancellation: back to the last offset counted,
            # unless this body may be kept in part and its client went away.
            pipe.settle()  # at most one batch in flight: a few milliseconds
            if partial and body.gone:
                counted = await self._keep_received(held, record.id, pipe, counted)
                if counted == start + received:
                    self._save(record.id, counted, whole, strong)
            await to_thread.run_sync(held.truncate, counted)
            raise
        self._save(record.id, start + received, whole, strong)
        return replace(record, offset=start + received, expires=expires)

    async def _count(self, held: StagedUpload, upload_id: str, counted: int) -> int:
        """A checkpoint: make the appended bytes durable, then move the catalog's offset to them."""
        durable = await to_thread.run_sync(held.keep)
        if durable > counted:
            expires = utcnow() + EXPIRY
            if not await to_thread.run_sync(self.catalog.advance_tus_upload, upload_id, counted, durable, expires):
                raise moved_on(counted)
        return durable

    async def _keep_received(self, held: StagedUpload, upload_id: str, pipe: WorkerPipe, counted: int) -> int:
        """After a disconnect: write what was received, count what is durable; the new offset.

        A failure here (a full disk, the catalog) keeps only what was counted before.
        """
        try:
            await pipe.finish()
            return await self._count(held, upload_id, counted)
        except Exception:
            log.exception("tus upload %s: could not keep an interrupted PATCH", upload_id)
            return counted

    async def _complete(self, held: StagedUpload, record: TusRecord, final_md5: str | None) -> FileRecord:
        """Verify the whole file's MD5, promote the staged bytes and record the file."""
        whole = self._hashes.resume(record.id, record.offset)
        strong = self._sha256s.resume(record.id, record.offset)
        self._forget(record.id)
        if whole is None or strong is None:
            md5, sha256 = await to_thread.run_sync(digests_of, held.chunks())  # the extra read, see above
        else:
            md5, sha256 = whole.hexdigest(), strong.hexdigest()
        claims = [(record.md5, md5, "md5"), (final_md5, md5, "md5"), (record.sha256, sha256, "sha256")]
        for declared, actual, algorithm in claims:
            if declared is not None and actual != declared:
                await to_thread.run_sync(self.catalog.delete_tus_upload, record.id)
                await to_thread.run_sync(held.discard)
                raise checksum_failed(declared, actual, algorithm)
        expires_in = expires_in_of(parse_metadata(record.metadata))
        location = await to_thread.run_sync(held.promote, record.owner_id)
        try:
            admission = await quotas.prepare(self.catalog, record.owner_id, self.default_retention, expires_in)
        except BaseException:
            await to_thread.run_sync(self.store.delete, location)  # promoted, never recorded: nobody's
            await to_thread.run_sync(self.catalog.delete_tus_upload, record.id)
            raise
        try:
            stored = await record_committed(
                self.store,
                self.catalog,
                record.owner_id,
                record.name,
                record.length,
                md5,
                location,
                None,
                admission,
                metadata_attributes(record.metadata),
                sha256=sha256,
            )
        except BaseException:
            await to_thread.run_sync(self.catalog.delete_tus_upload, record.id)
            raise
        await to_thread.run_sync(
            self.catalog.complete_tus_upload, record.id, stored.md5, stored.created, utcnow() + EXPIRY, stored.sha256
        )
        audit.record("tus.completed", upload_id=record.id, name=record.name, size=record.length, md5=stored.md5)
        return stored

    def _save(self, upload_id: str, offset: int, md5: Any | None, sha256: Any | None) -> None:
        """Remember the running digests at ``offset`` (those this process has)."""
        if md5 is not None:
            self._hashes.save(upload_id, offset, md5)
        if sha256 is not None:
            self._sha256s.save(upload_id, offset, sha256)

    def _forget(self, upload_id: str) -> None:
        self._hashes.forget(upload_id)
        self._sha256s.forget(upload_id)

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
            self._forget(upload_id)
            return 1
        finally:
            held.close()


def digests_of(chunks: Iterable[bytes], md5: Any = None, sha256: Any = None) -> tuple[str, str]:
    """Hex MD5 and SHA-256 of ``chunks``, continuing ``md5``/``sha256`` when given (a prefix's)."""
    md5 = hashlib.md5(usedforsecurity=False) if md5 is None else md5
    sha256 = hashlib.sha256() if sha256 is None else sha256
    for chunk in chunks:
        md5.update(chunk)
        sha256.update(chunk)
    return str(md5.hexdigest()), str(sha256.hexdigest())
