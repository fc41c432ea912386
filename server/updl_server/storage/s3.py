"""Blobs in an S3 bucket (or any S3-compatible store) through boto3.

Layout under ``s3://BUCKET/PREFIX/``::

    <user id>/<blob id>          committed blobs; the location is "<user id>/<blob id>"
    staging/<upload id>/...      resumable (tus) uploads (see ``s3_staging``)

**Commit.** A writer hashes nothing itself (the caller's sink does); it buffers
up to one part (at least S3's 5 MiB minimum) and sends each full buffer with
``upload_part`` into a multipart upload it starts on the first full part. The
object exists only once ``commit()`` completes that upload (or, for a blob
smaller than one part, ``put_object``s the buffer), so the integrity order is
unchanged: stream+hash → verify → complete → catalog row → delete the old
object. ``abort()`` (409, 413, a client that went away) aborts the multipart
upload, so nothing partial is left; a process that dies mid-upload leaves an
in-progress multipart upload, which ``sweep()`` — at startup and every
``MULTIPART_SWEEP_SECONDS`` in a background thread — aborts once older than
``multipart_grace``.

**Reads.** ``open()`` issues the ``GetObject`` (with ``Range``) at lookup
time, so a replace+delete after it cannot break the reader; a key that is
already gone is ``BlobNotFoundError`` and the route looks the name up again.
Readers are sync iterators (Starlette runs them in its threadpool).

Every method blocks on the network: callers run them in a thread.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from .base import CHUNK_SIZE, ORPHAN_GRACE_SECONDS, BlobNotFoundError, SweepReport
from .s3_client import MAX_PARTS, MIN_PART_SIZE, NOT_FOUND, error_code, make_client
from .s3_staging import S3Staging

log = logging.getLogger("updl_server")

PART_SIZE = 8 * 1024 * 1024
# An upload in flight can take long; only much older multipart uploads are abandoned.
MULTIPART_GRACE_SECONDS = 24 * 3600.0
MULTIPART_SWEEP_SECONDS = 3600.0
PRESIGN_SECONDS = 900
_LOCATION = re.compile(r"^\d+/[0-9a-f]{32}$")


class S3BlobWriter:
    """A blob on its way into S3: one part buffered, full parts sent as they fill."""

    def __init__(self, client: Any, bucket: str, key: str, location: str, part_size: int) -> None:
        """Write to ``key``; nothing is sent before a part is full."""
        self._client, self._bucket, self._key = client, bucket, key
        self._location = location
        self._part_size = part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._done = False

    def write(self, data: bytes) -> None:
        """Buffer ``data``; send the buffer as a part once it holds ``part_size`` bytes."""
        if self._done:
            raise ValueError("blob writer is closed")
        self._buffer += data
        if len(self._buffer) >= self._part_size:
            self._send_part()

    def _send_part(self) -> None:
        if self._upload_id is None:
            self._upload_id = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)["UploadId"]
        number = len(self._parts) + 1
        body, self._buffer = bytes(self._buffer), bytearray()
        answer = self._client.upload_part(
            Bucket=self._bucket, Key=self._key, Body=body, UploadId=self._upload_id, PartNumber=number
        )
        self._parts.append({"ETag": answer["ETag"], "PartNumber": number})

    def copy(self, source_key: str, first: int, last: int) -> None:
        """Append bytes ``first..last`` (inclusive) of another object, server-side (UploadPartCopy).

        Only before any ``write`` (a copied part cannot follow buffered bytes).
        """
        if self._done or self._buffer:
            raise ValueError("copy() needs an open writer with nothing buffered")
        if self._upload_id is None:
            self._upload_id = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)["UploadId"]
        number = len(self._parts) + 1
        answer = self._client.upload_part_copy(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            CopySource={"Bucket": self._bucket, "Key": source_key},
            CopySourceRange=f"bytes={first}-{last}",
        )
        self._parts.append({"ETag": answer["CopyPartResult"]["ETag"], "PartNumber": number})

    def commit(self) -> str:
        """Make the object visible: complete the multipart upload, or put a small blob whole."""
        if self._done:
            raise ValueError("blob writer is closed")
        if self._upload_id is None:
            self._client.put_object(Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer))
        else:
            if self._buffer:
                self._send_part()
            self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        self._buffer = bytearray()
        self._done = True
        return self._location

    def abort(self) -> None:
        """Abort the multipart upload (if any) and drop the buffer; a no-op after ``commit()``."""
        if self._done:
            return
        self._done = True
        self._buffer = bytearray()
        if self._upload_id is not None:
            try:
                self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)
            except ClientError as exc:
                # The sweep aborts it later; the caller's own error matters more.
                log.warning("could not abort multipart upload of %s: %s", self._key, exc)


class S3BlobReader:
    """An already-started ``GetObject`` body, iterated in chunks."""

    def __init__(self, body: Any, chunk_size: int = CHUNK_SIZE) -> None:
        """Wrap a botocore ``StreamingBody``."""
        self._body = body
        self._chunk_size = chunk_size

    def __iter__(self) -> Iterator[bytes]:
        """Yield the body in chunks, closing it at the end."""
        try:
            yield from self._body.iter_chunks(self._chunk_size)
        finally:
            self.close()

    def close(self) -> None:
        """Close the HTTP body (idempotent)."""
        self._body.close()


class S3BlobStore:
    """The ``BlobStore`` on S3 (see the module docstring)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        client: Any = None,
        part_size: int = PART_SIZE,
        max_size: int | None = None,
        orphan_grace: float = ORPHAN_GRACE_SECONDS,
        multipart_grace: float = MULTIPART_GRACE_SECONDS,
    ) -> None:
        """A store in ``bucket`` under ``prefix``; credentials and region from boto3's usual chain.

        ``part_size`` grows when needed so that ``max_size`` fits in S3's 10,000 parts.
        """
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client if client is not None else make_client(endpoint_url)
        floor = math.ceil(max_size / MAX_PARTS) if max_size else 0
        self.part_size = max(part_size, MIN_PART_SIZE, floor)
        self.orphan_grace = orphan_grace
        self.multipart_grace = multipart_grace
        self._staging = S3Staging(
            self.client, bucket, self.prefix + "staging/", self.begin, self.part_size, orphan_grace
        )
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    @property
    def staging(self) -> S3Staging:
        """The staging area, ``PREFIX/staging/``."""
        return self._staging

    def key(self, location: str) -> str:
        """The object key of a location (refuses anything that is not one of ours)."""
        if not _LOCATION.match(location):
            raise ValueError(f"not a blob location: {location!r}")
        return self.prefix + location

    def start(self) -> None:
        """Check the bucket is reachable and start the periodic multipart sweep."""
        self.client.head_bucket(Bucket=self.bucket)
        self._stop.clear()
        self._sweeper = threading.Thread(target=self._sweep_periodically, daemon=True, name="updl-s3-sweep")
        self._sweeper.start()

    def close(self) -> None:
        """Stop the periodic sweep."""
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
            self._sweeper = None

    def begin(self, owner_id: int = 0) -> S3BlobWriter:
        """A writer for a new blob ``<owner_id>/<fresh id>``."""
        location = f"{owner_id}/{uuid.uuid4().hex}"
        return S3BlobWriter(self.client, self.bucket, self.key(location), location, self.part_size)

    def open(self, location: str, start: int = 0, end: int | None = None) -> S3BlobReader:
        """Start the ``GetObject`` now (``BlobNotFoundError`` if the key is gone)."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(location)}
        if start or end is not None:
            params["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            answer = self.client.get_object(**params)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                raise BlobNotFoundError(location) from exc
            raise
        return S3BlobReader(answer["Body"])

    def presign_url(self, location: str, name: str, expires: int = PRESIGN_SECONDS) -> str:
        """A URL anyone can GET the blob from for ``expires`` seconds, as a download of
        ``name``'s base name: S3 answers ``attachment`` and ``octet-stream``, so a stored HTML
        or SVG file is saved, never rendered, in the bucket's origin or any other."""
        filename = quote(name.rsplit("/", 1)[-1], safe="")
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": self.key(location),
                    "ResponseContentDisposition": f"attachment; filename*=UTF-8''{filename}",
                    "ResponseContentType": "application/octet-stream",
                },
                ExpiresIn=expires,
            )
        )

    def delete(self, location: str) -> None:
        """Delete a committed blob (absent is fine: S3 deletes are idempotent)."""
        self.client.delete_object(Bucket=self.bucket, Key=self.key(location))

    def sweep(self, is_referenced: Callable[[str], bool]) -> SweepReport:
        """Abort stale multipart uploads; delete old blobs no catalog row references."""
        return SweepReport(temp_dirs=self.abort_stale_uploads(), orphan_blobs=self._sweep_orphans(is_referenced))

    def abort_stale_uploads(self) -> int:
        """Abort multipart uploads under the prefix started more than ``multipart_grace`` ago."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.multipart_grace)
        aborted = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < cutoff:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
        return aborted

    def _sweep_orphans(self, is_referenced: Callable[[str], bool]) -> int:
        cutoff = datetime.now(UTC) - timedelta(seconds=self.orphan_grace)
        removed = 0
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for item in page.get("Contents", []):
                location = item["Key"][len(self.prefix) :]
                if _LOCATION.match(location) and item["LastModified"] < cutoff and not is_referenced(location):
                    self.delete(location)
                    removed += 1
        return removed

    def _sweep_periodically(self) -> None:
        while not self._stop.wait(MULTIPART_SWEEP_SECONDS):
            try:
                if aborted := self.abort_stale_uploads():
                    log.warning("aborted %d stale multipart upload(s)", aborted)
            except ClientError as exc:
                log.warning("multipart sweep failed: %s", exc)
