"""The tus staging area on S3: one object per PATCH, composed into a blob at completion.

Layout under ``PREFIX/staging/<upload id>/``::

    upload                              marker: the upload exists (created empty)
    hold                                the exclusive hold: a lease object
    parts/<start:020d>-<end:020d>       the bytes of one PATCH, [start, end)

**Hold.** ``claim`` creates ``hold`` with a conditional write (``If-None-Match:
*``); an existing hold means another request is writing (``StagingBusyError``,
423) unless it is older than ``HOLD_LEASE_SECONDS`` — its holder died — in which
case it is taken over with ``If-Match`` on its ETag, so of two claimants only
one wins. ``close`` deletes it with ``If-Match`` on our own ETag. The lease
replaces the kernel's flock of the local store: a crashed holder blocks the
upload for up to the lease, and a PATCH whose body takes longer than the lease
can lose its hold (``sync`` checks the hold before storing the part).

**Appends.** A PATCH's bytes are spooled to a local temporary file (unlinked,
so a crash leaves nothing) and ``sync`` stores them as one part object before
the catalog's offset moves; the parts that chain contiguously from 0 are the
staged bytes, and ``truncate`` deletes parts past the catalog's offset (left by
a holder that died between storing its part and the catalog update). A PATCH
without a checksum that is interrupted, or that passes a checkpoint, stores its
spool with ``keep``: as a part when it holds at least ``MIN_PART_SIZE`` bytes,
otherwise not at all, so every part but the last stays composable.

**Promote** (and ``concatenate``, which does the same for the parts of several
uploads in order, for tus concatenation). When every part but the last is at least 5 MiB (the SDK's PATCHes
are 8 MiB), the blob is composed server-side with ``UploadPartCopy``: no byte
passes through the server. Otherwise (small PATCHes) the parts are streamed
back through a new blob writer: one extra download and upload of the file.
Then the staging objects are deleted.
"""

from __future__ import annotations

import math
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Protocol

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from ..formats import UPLOAD_ID
from .base import CHUNK_SIZE, BlobWriter, StagedUpload, StagedUploadGoneError, StagingBusyError
from .s3_client import LOST_RACE, MIN_PART_SIZE, NOT_FOUND, error_code

MAX_COPY_SIZE = 5 * 1024**3  # largest UploadPartCopy range
HOLD_LEASE_SECONDS = 600.0
_PART = re.compile(r"^(\d{20})-(\d{20})$")


class ComposingWriter(BlobWriter, Protocol):
    """A blob writer that can also copy a range of another object server-side."""

    def copy(self, source_key: str, first: int, last: int) -> None:
        """Append bytes ``first..last`` (inclusive) of object ``source_key``."""


@dataclass(frozen=True)
class Part:
    """One stored PATCH: bytes ``[start, end)`` of the upload in object ``key``."""

    key: str
    start: int
    end: int

    @property
    def size(self) -> int:
        """Bytes in the part."""
        return self.end - self.start


class S3StagedUpload:
    """A held staged upload: its parts so far, and this PATCH's spooled bytes."""

    def __init__(self, staging: S3Staging, upload_id: str, hold_etag: str, parts: list[Part]) -> None:
        """Made by ``S3Staging.claim`` once the hold is ours."""
        self._staging = staging
        self._id = upload_id
        self._hold_etag = hold_etag
        self._parts = parts
        self._spool: IO[bytes] | None = None
        self._pending = 0
        self._closed = False

    @property
    def _end(self) -> int:
        return self._parts[-1].end if self._parts else 0

    def size(self) -> int:
        """Bytes in stored parts plus those spooled (no network: parts are listed at claim)."""
        return self._end + self._pending

    def truncate(self, size: int) -> None:
        """Drop spooled bytes past ``size`` and delete stored parts that start at or past it."""
        if size < self._end + self._pending:
            self._drop_spool()
        doomed = [p for p in self._parts if p.end > size]
        if any(p.start < size for p in doomed):
            raise ValueError(f"staged upload {self._id}: {size} is not a part boundary")
        if doomed:
            self._staging.delete_keys([p.key for p in doomed])
            self._parts = [p for p in self._parts if p.end <= size]

    def append(self, data: bytes) -> None:
        """Spool ``data`` locally (stored by ``sync``)."""
        if self._spool is None:
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by sync/truncate/close
        self._spool.write(data)
        self._pending += len(data)

    def sync(self) -> None:
        """Store the spooled bytes as one part object, if the hold is still ours."""
        if self._spool is None or not self._pending:
            return
        if not self._staging.holds(self._id, self._hold_etag):
            raise StagingBusyError(self._id)
        part = self._staging.store_part(self._id, self._end, self._pending, self._spool)
        self._parts.append(part)
        self._drop_spool()

    def keep(self) -> int:
        """Store the spooled bytes as a part if they fill one (``MIN_PART_SIZE``), else drop them.

        A shorter part in the middle of the upload would stop ``promote`` from
        composing the blob server-side, so an interrupted tail under 5 MiB is
        not kept (the client sends it again).
        """
        if self._pending >= MIN_PART_SIZE:
            self.sync()
        else:
            self._drop_spool()
        return self._end

    def chunks(self) -> Iterator[bytes]:
        """The stored parts' bytes, in order (``sync`` first)."""
        self.sync()
        for part in self._parts:
            yield from self._staging.read(part.key)

    @property
    def parts(self) -> list[Part]:
        """The stored parts, in order (``sync`` first for the spooled bytes)."""
        return list(self._parts)

    def promote(self, owner_id: int = 0) -> str:
        """Compose the parts into a committed blob of ``owner_id``; delete the staging objects."""
        return self._staging.concatenate([self], owner_id)

    def discard(self) -> None:
        """Delete the marker (the upload is gone for everyone) and then every part."""
        self._drop_spool()
        self._staging.delete_upload(self._id)
        self._parts = []

    def close(self) -> None:
        """Release the hold (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._drop_spool()
        self._staging.release(self._id, self._hold_etag)

    def _drop_spool(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        self._pending = 0


def copy_ranges(size: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges splitting ``size`` into equal pieces of at most ``MAX_COPY_SIZE``."""
    pieces = max(1, math.ceil(size / MAX_COPY_SIZE))
    step = math.ceil(size / pieces)
    return [(lo, min(lo + step, size) - 1) for lo in range(0, size, step)]


class S3Staging:
    """The staging area under ``prefix`` (``PREFIX/staging/``) of an S3 blob store."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str,
        new_blob: Callable[[int], ComposingWriter],
        part_size: int,
        grace: float,
    ) -> None:
        """``new_blob(owner_id)`` starts the writer a promoted upload becomes.

        ``sweep`` leaves alone uploads touched less than ``grace`` seconds ago.
        """
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.new_blob = new_blob
        self._grace = grace
        self._transfer = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size, use_threads=False)

    def _dir(self, upload_id: str) -> str:
        if not UPLOAD_ID.match(upload_id):
            raise ValueError(f"not an upload id: {upload_id!r}")
        return f"{self.prefix}{upload_id}/"

    def create(self, upload_id: str) -> None:
        """Write the marker; ids are never reused."""
        self.client.put_object(Bucket=self.bucket, Key=self._dir(upload_id) + "upload", Body=b"", IfNoneMatch="*")

    def claim(self, upload_id: str) -> S3StagedUpload:
        """Take the hold, then check the upload still exists and list its parts."""
        etag = self._take_hold(upload_id)
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._dir(upload_id) + "upload")
        except ClientError as exc:
            self.release(upload_id, etag)
            if error_code(exc) in NOT_FOUND:
                raise StagedUploadGoneError(upload_id) from None
            raise
        return S3StagedUpload(self, upload_id, etag, self._chain(upload_id))

    def _take_hold(self, upload_id: str) -> str:
        key = self._dir(upload_id) + "hold"
        token = secrets.token_hex(16).encode()  # a distinct ETag per holder
        try:
            return str(self.client.put_object(Bucket=self.bucket, Key=key, Body=token, IfNoneMatch="*")["ETag"])
        except ClientError as exc:
            if error_code(exc) not in LOST_RACE:
                raise
        try:
            current = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:  # released meanwhile: the next request gets it
                raise StagingBusyError(upload_id) from None
            raise
        lease_end = current["LastModified"] + timedelta(seconds=HOLD_LEASE_SECONDS)
        if lease_end > datetime.now(UTC):
            raise StagingBusyError(upload_id)
        try:  # the holder died: take over, unless another claimant just did
            return str(self.client.put_object(Bucket=self.bucket, Key=key, Body=token, IfMatch=current["ETag"])["ETag"])
        except ClientError as exc:
            if error_code(exc) in LOST_RACE | NOT_FOUND:
                raise StagingBusyError(upload_id) from None
            raise

    def holds(self, upload_id: str, etag: str) -> bool:
        """Whether the hold object is still the one we wrote."""
        try:
            current = self.client.head_object(Bucket=self.bucket, Key=self._dir(upload_id) + "hold")
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                return False
            raise
        return str(current["ETag"]) == etag

    def release(self, upload_id: str, etag: str) -> None:
        """Delete the hold if it is still ours."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._dir(upload_id) + "hold", IfMatch=etag)
        except ClientError as exc:
            if error_code(exc) not in LOST_RACE | NOT_FOUND:
                raise

    def _chain(self, upload_id: str) -> list[Part]:
        """The parts that follow each other from byte 0 (strays past a gap are ignored)."""
        by_start: dict[int, Part] = {}
        for key in self._keys(self._dir(upload_id) + "parts/"):
            match = _PART.match(key.rpartition("/")[2])
            if match:
                start, end = int(match.group(1)), int(match.group(2))
                by_start[start] = Part(key, start, end)
        chain: list[Part] = []
        while (part := by_start.get(chain[-1].end if chain else 0)) is not None:
            chain.append(part)
        return chain

    def store_part(self, upload_id: str, start: int, size: int, spool: IO[bytes]) -> Part:
        """Upload ``size`` spooled bytes as the part starting at ``start``."""
        key = f"{self._dir(upload_id)}parts/{start:020d}-{start + size:020d}"
        spool.seek(0)
        self.client.upload_fileobj(spool, self.bucket, key, Config=self._transfer)
        return Part(key, start, start + size)

    def read(self, key: str) -> Iterator[bytes]:
        """One object's bytes in chunks."""
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        try:
            yield from body.iter_chunks(CHUNK_SIZE)
        finally:
            body.close()

    def delete_upload(self, upload_id: str) -> None:
        """Delete the marker, then every other object of the upload but the hold."""
        base = self._dir(upload_id)
        self.client.delete_object(Bucket=self.bucket, Key=base + "upload")
        self.delete_keys([k for k in self._keys(base) if k != base + "hold"])

    def delete_keys(self, keys: list[str]) -> None:
        """Delete objects, up to 1000 per request."""
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def sweep(self, is_live: Callable[[str], bool]) -> int:
        """Delete uploads whose newest object is older than the grace period and no catalog
        row owns."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self._grace)
        newest: dict[str, datetime] = {}
        keys: dict[str, list[str]] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                upload_id = item["Key"][len(self.prefix) :].partition("/")[0]
                if UPLOAD_ID.match(upload_id):
                    newest[upload_id] = max(item["LastModified"], newest.get(upload_id, item["LastModified"]))
                    keys.setdefault(upload_id, []).append(item["Key"])
        removed = 0
        for upload_id, moment in newest.items():
            if moment < cutoff and not is_live(upload_id):
                self.delete_keys(keys[upload_id])
                removed += 1
        return removed

    def concatenate(self, held: Sequence[StagedUpload], owner_id: int = 0) -> str:
        """Compose held uploads, in order, into a committed blob of ``owner_id``; delete their objects.

        Server-side (``UploadPartCopy``) when every stored part but the very last is at
        least ``MIN_PART_SIZE``; otherwise the bytes are streamed back through a new blob.
        """
        uploads = [upload for upload in held if isinstance(upload, S3StagedUpload)]
        if len(uploads) != len(held):
            raise TypeError("concatenate takes this staging area's own held uploads")
        for upload in uploads:
            upload.sync()
        parts = [part for upload in uploads for part in upload.parts if part.size]
        writer = self.new_blob(owner_id)
        try:
            if parts and all(p.size >= MIN_PART_SIZE for p in parts[:-1]):
                for part in parts:
                    for first, last in copy_ranges(part.size):
                        writer.copy(part.key, first, last)
            else:
                for part in parts:
                    for chunk in self.read(part.key):
                        writer.write(chunk)
            location = writer.commit()
        except BaseException:
            writer.abort()
            raise
        for upload in uploads:
            upload.discard()
        return location

    def _keys(self, prefix: str) -> Iterator[str]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield str(item["Key"])
