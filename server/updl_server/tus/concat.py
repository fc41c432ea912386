"""tus Concatenation: parallel parts of one file (``Upload-Concat``).

A client creates several uploads with ``Upload-Concat: partial``, sends
them in parallel (each an ordinary tus upload: PATCHes, checksums, resume),
then creates the final upload with ``Upload-Concat: final;<url> <url> ...``,
which names the file (``Upload-Metadata``) and becomes it at once. A partial
upload never becomes a file by itself: when it reaches its length it waits,
staged, for a final upload (or its expiry).

**Bounds.** At most ``MAX_PARTS`` parts and ``MAX_HEADER`` bytes of header;
each URL must name (by its last path segment under ``/tus/``) a partial upload
of the same user that is complete; no part twice; the sum within the server's
maximum size. Anything else is a 400 naming the URL, before any byte moves.

**Integrity.** As for a single upload, the whole file's digests decide: its
MD5 and SHA-256 are computed over the parts in order (one read of the staged
bytes, except the first part's when this process still has its running
digests from the PATCHes) and compared with the ``md5`` and ``sha256`` of the
final's ``Upload-Metadata`` and/or its ``Upload-Md5`` header. On a mismatch the parts are deleted and nothing is
kept. Then the staging area joins the parts without copying them (local disk:
the part files become the segments of one blob; S3: ``UploadPartCopy``), the
file row is committed, and in one transaction the final upload is recorded as
completed and the partial uploads are forgotten.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from anyio import to_thread

from .. import quotas
from ..catalog import FileRecord, TusRecord, utcnow
from ..errors import HTTPError, bad_request, checksum_failed, too_large
from ..formats import UPLOAD_ID
from ..storage import StagedUpload
from ..uploads import record_committed
from .protocol import TUS_EXTENSIONS, expires_in_of, metadata_attributes, parse_claims, parse_metadata
from .service import EXPIRY, TusService, digests_of

MAX_PARTS = 64  # parts in one final upload (tus-js-client's parallelUploads is usually 2-8)
MAX_HEADER = 16 * 1024  # bytes of Upload-Concat: 64 absolute URLs fit with room to spare
_UPLOAD_PATH = re.compile(r"(?:^|/)tus/([^/]+)/?$")


@dataclass(frozen=True)
class Concat:
    """A parsed ``Upload-Concat``: ``partial``, or ``final`` with the ids of its parts in order."""

    partial: bool
    part_ids: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()


def parse_concat(headers: Mapping[str, str]) -> Concat | None:
    """``Upload-Concat`` of a creation; ``None`` if absent, 400 if malformed or past the bounds."""
    header = headers.get("upload-concat")
    if header is None:
        return None
    if len(header) > MAX_HEADER:
        raise bad_request(f"Upload-Concat is longer than {MAX_HEADER} bytes", max_header=MAX_HEADER)
    value = header.strip()
    if value == "partial":
        return Concat(partial=True)
    kind, _, rest = value.partition(";")
    if kind.strip() != "final":
        raise bad_request("Upload-Concat must be 'partial' or 'final;<upload URLs>'", supported=TUS_EXTENSIONS)
    urls = tuple(rest.split())
    if not urls:
        raise bad_request("Upload-Concat: final needs the URLs of its partial uploads")
    if len(urls) > MAX_PARTS:
        raise bad_request(f"Upload-Concat names more than {MAX_PARTS} parts", max_parts=MAX_PARTS, parts=len(urls))
    ids = tuple(_upload_id(url) for url in urls)
    if len(set(ids)) != len(ids):
        raise bad_request("Upload-Concat names the same partial upload twice")
    return Concat(partial=False, part_ids=ids, urls=urls)


def _upload_id(url: str) -> str:
    match = _UPLOAD_PATH.search(urlsplit(url).path)
    if match is None or not UPLOAD_ID.match(match.group(1)):
        raise bad_request("Upload-Concat names something that is not an upload of this server", url=url[:200])
    return match.group(1)


def not_a_part(url: str, reason: str) -> HTTPError:
    """400: a URL in ``Upload-Concat: final`` that cannot be concatenated (and why)."""
    return bad_request(f"Upload-Concat: {reason}", url=url[:200])


async def concatenate(
    tus: TusService, owner: int, concat: Concat, raw_metadata: str, final_md5: str | None
) -> tuple[TusRecord, FileRecord]:
    """Make the final upload of ``concat``'s parts: verify, join, store; see the module docstring."""
    name, md5, sha256 = parse_claims(raw_metadata)
    parts = [
        await _complete_part(tus, owner, part_id, url)
        for part_id, url in zip(concat.part_ids, concat.urls, strict=False)
    ]
    length = sum(part.length for part in parts)
    if length > tus.max_size:
        raise too_large(tus.max_size)
    expires_in = expires_in_of(parse_metadata(raw_metadata))
    admission = await quotas.prepare(tus.catalog, owner, tus.default_retention, expires_in, name, length)  # 507
    now = utcnow()
    final = TusRecord(uuid.uuid4().hex, owner, name, length, length, md5, raw_metadata, now, now + EXPIRY)
    held: list[StagedUpload] = []
    try:
        for part in parts:
            held.append(await tus._claim(part.id))
        for part, url in zip(parts, concat.urls, strict=True):  # again under the holds: a PATCH may have raced us
            current = await to_thread.run_sync(tus.catalog.tus_upload, part.id)
            if current is None or current.offset != current.length:
                raise not_a_part(url, "the partial upload changed meanwhile; try again")
        actual, actual_sha256 = await to_thread.run_sync(_digests_of_parts, tus, parts, held)
        claims = [(md5, actual, "md5"), (final_md5, actual, "md5"), (sha256, actual_sha256, "sha256")]
        for declared, computed, algorithm in claims:
            if declared is not None and computed != declared:
                await _drop_parts(tus, parts, held)
                raise checksum_failed(declared, computed, algorithm)
        location = await to_thread.run_sync(tus.store.staging.concatenate, held, owner)
        try:
            attributes = metadata_attributes(raw_metadata)
            stored = await record_committed(
                tus.store,
                tus.catalog,
                owner,
                name,
                length,
                actual,
                location,
                None,
                admission,
                attributes,
                sha256=actual_sha256,
            )
        except BaseException:
            await _drop_parts(tus, parts, [])  # their bytes are the blob now (deleted on failure)
            raise
        await to_thread.run_sync(
            tus.catalog.concatenate_tus_uploads,
            final,
            [p.id for p in parts],
            stored.md5,
            stored.created,
            utcnow() + EXPIRY,
            stored.sha256,
        )
        return final, stored
    finally:
        for hold in held:
            await to_thread.run_sync(hold.close)


async def _complete_part(tus: TusService, owner: int, part_id: str, url: str) -> TusRecord:
    """The caller's complete partial upload ``part_id``; 400 naming ``url`` otherwise."""
    record = await to_thread.run_sync(tus.catalog.tus_upload, part_id)
    if record is None or record.owner_id != owner or record.expires <= utcnow():
        raise not_a_part(url, "no such partial upload of yours (unknown, another user's, expired or used)")
    if not record.partial:
        raise not_a_part(url, "the upload was not created with Upload-Concat: partial")
    if record.offset != record.length:
        raise HTTPError(
            400,
            "Upload-Concat: a partial upload is incomplete; finish it first",
            url=url[:200],
            offset=record.offset,
            length=record.length,
        )
    return record


def _digests_of_parts(tus: TusService, parts: list[TusRecord], held: list[StagedUpload]) -> tuple[str, str]:
    """MD5 and SHA-256 of the parts in order, in one read; the first part's running digests are
    reused when this process has them."""
    first = parts[0]
    md5: Any = tus._hashes.resume(first.id, first.length)
    sha256: Any = tus._sha256s.resume(first.id, first.length)
    rest = held[1:]
    if md5 is None or sha256 is None:
        md5, sha256, rest = None, None, held
    digests = digests_of(itertools.chain.from_iterable(hold.chunks() for hold in rest), md5, sha256)
    for part in parts:
        tus._forget(part.id)
    return digests


async def _drop_parts(tus: TusService, parts: list[TusRecord], held: list[StagedUpload]) -> None:
    """Forget the parts and delete their staged bytes (after a mismatch: nothing is kept)."""
    for part in parts:
        await to_thread.run_sync(tus.catalog.delete_tus_upload, part.id)
    for hold in held:
        await to_thread.run_sync(hold.discard)
