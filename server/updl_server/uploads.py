"""Storing an upload: the integrity order, in one function.

``store_verified`` is the guarantee the server makes: a file becomes visible
only after its bytes are on disk and match the MD5 the client claimed, and a
replacement swaps the whole file at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from . import audit, metrics
from .attributes import NO_ATTRIBUTES, Attributes
from .catalog import Catalog, FileRecord, PreconditionFailedError
from .errors import HTTPError, checksum_failed, too_large
from .numbers import parse_count
from .preconditions import Preconditions, precondition_failed
from .quotas import Admission
from .receive import BodySource, HashingSink, RequestBody
from .storage import BlobStore

# Room for multipart boundaries and part headers when judging Content-Length.
MULTIPART_OVERHEAD = 64 * 1024
# How much of a refused body we read and discard so the client sees the answer.
DRAIN_LIMIT = 16 * 1024 * 1024


async def store_verified(
    store: BlobStore,
    catalog: Catalog,
    owner_id: int,
    source: BodySource,
    max_size: int,
    preconditions: Preconditions | None = None,
    admission: Admission | None = None,
) -> FileRecord:
    """Receive, verify, commit and record one file; return its catalog record.

    1. stream the body into a temporary blob, hashing and counting (413 past ``max_size``);
    2. compare with the claimed MD5 and SHA-256 (409, nothing kept);
    3. commit the blob (fsync + rename; still unreferenced, so invisible);
    4. in one transaction, check ``preconditions`` (412) and the quota (507, ``admission``)
       and point ``(owner, name)`` at the blob, with its expiry, learning the replaced blob;
    5. only then delete the replaced blob.
    Any failure before 4 discards the temporary blob; a failure in 4 deletes the new one.
    """
    writer = store.begin(owner_id)
    sink = HashingSink(writer, max_size)
    try:
        claim = await source.fill(sink)
        await sink.finish()
        actual = sink.md5
        if claim.md5 is not None and claim.md5 != actual:
            raise checksum_failed(claim.expected or claim.md5, actual)
        if claim.sha256 is not None and claim.sha256 != sink.sha256:
            raise checksum_failed(claim.sha256, sink.sha256, "sha256")
        location = await run_in_threadpool(writer.commit)  # fsync must not stall the event loop
    except BaseException:
        # Covers 413/409/400, a client that disconnects mid-body, and cancellation.
        sink.settle()  # a batch may still be on its way into the writer
        writer.abort()
        raise
    return await record_committed(
        store,
        catalog,
        owner_id,
        claim.name,
        sink.size,
        actual,
        location,
        preconditions,
        admission,
        claim.attributes,
        sha256=sink.sha256,
    )


async def record_committed(
    store: BlobStore,
    catalog: Catalog,
    owner_id: int,
    name: str,
    size: int,
    md5: str,
    location: str,
    preconditions: Preconditions | None = None,
    admission: Admission | None = None,
    attributes: Attributes = NO_ATTRIBUTES,
    *,
    sha256: str | None = None,
) -> FileRecord:
    """Steps 4 and 5 of the integrity order, for a verified blob already committed at ``location``.

    Shared by ``store_verified`` and the tus completion: record ``(owner, name)``
    → ``location`` in one transaction (412 if ``preconditions`` fail; the new blob
    is deleted on any failure), then delete the version it replaced.
    """
    check = preconditions.allows if preconditions else None
    admitted = admission or Admission()
    try:
        record, replaced = await run_in_threadpool(
            lambda: catalog.put_file(
                owner_id,
                name,
                size,
                md5,
                location,
                sha256=sha256,
                check=check,
                expires_in=admitted.expires_in,
                admit=admitted.admit,
                mode=attributes.mode,
                mtime=attributes.mtime,
            )
        )
    except PreconditionFailedError as exc:
        await run_in_threadpool(store.delete, location)  # a network call on S3
        raise precondition_failed(name, exc.current_md5) from None
    except Exception:
        await run_in_threadpool(store.delete, location)
        raise
    if replaced is not None:
        await run_in_threadpool(store.delete, replaced)
    metrics.upload_verified(size)
    audit.record("upload.replaced" if replaced else "upload.committed", user_id=owner_id, name=name, size=size, md5=md5)
    return record


async def refuse_unless_allowed(catalog: Catalog, owner_id: int, name: str, preconditions: Preconditions) -> None:
    """412 before any byte is stored when the current version already fails ``preconditions``.

    Only an early answer: the version can change before commit, where the catalog checks again.
    """
    if preconditions:
        current = await run_in_threadpool(catalog.file, owner_id, name)
        current_md5 = None if current is None else current.md5
        if not preconditions.allows(current_md5):
            raise precondition_failed(name, current_md5)


def declared_length(request: Request) -> int | None:
    """The body's ``Content-Length``, or ``None`` when absent (chunked) or not a count."""
    return parse_count(request.headers.get("content-length"))


def refuse_declared_too_large(request: Request, max_size: int, overhead: int = 0) -> None:
    """413 up front when ``Content-Length`` (less ``overhead`` for multipart framing) proves it."""
    declared = declared_length(request)
    if declared is not None and declared - overhead > max_size:
        raise too_large(max_size)


@asynccontextmanager
async def draining_on_error(request: Request, body: RequestBody, max_size: int) -> AsyncIterator[None]:
    """On an ``HTTPError``, read and discard the rest of a modest body before answering.

    A server that answers and closes with unread request bytes resets the
    connection, and the reset can destroy the answer before the client reads
    it. A body far over the limit is not worth reading; a client that sent
    ``Expect: 100-continue`` and was refused before we read has sent nothing.
    """
    try:
        yield
    except HTTPError:
        declared = declared_length(request)
        awaiting_continue = request.headers.get("expect", "").lower() == "100-continue"
        if not (awaiting_continue and not body.started) and not (
            declared is not None and declared > max_size + DRAIN_LIMIT
        ):
            await body.drain(DRAIN_LIMIT)
        raise
