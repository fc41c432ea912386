"""The storage interfaces: ``BlobStore`` for file contents, ``Staging`` for resumable uploads.

Blobs are immutable and named by server-made ids (``location``), never by
user file names. A write goes to a temporary blob and becomes visible only
on ``commit()``; a replaced version is deleted only after the catalog points
elsewhere. Readers get an already-open handle, so deleting a blob (after a
replace) never breaks a download that has started.

A staged upload holds the partial bytes of a resumable (tus) upload. It is
created empty, grows by appends (one per PATCH), and at the end either
becomes a committed, still unreferenced blob (``promote``) or is thrown away
(``discard``). Staging is shared by every server process using the store:
consecutive PATCHes of one upload may land on different processes, so all
state lives in the catalog row and in the staging area. Only one request may
append at a time: ``claim`` takes an exclusive, non-blocking hold
(``StagingBusyError`` otherwise, answered with 423). The catalog's offset is
the authority; bytes past it (left by a writer that died before the catalog
advanced) are cut off with ``truncate`` by the next holder.

An append that is interrupted (a PATCH without a checksum whose client went
away or stalled) keeps what it can with ``keep``: every appended byte on
local disk; on S3 only a tail of at least one part (S3's 5 MiB minimum), so
the staged bytes stay composable server-side.

Several staged uploads (the parts of a tus concatenation) become one blob with
``Staging.concatenate``, which moves no byte: on local disk the part files
become the segments of a composite blob, on S3 the blob is composed with
``UploadPartCopy``.

Implementations: :mod:`.local` and :mod:`.local_staging` (files under the
data dir), :mod:`.s3` and :mod:`.s3_staging` (objects in a bucket).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

# The size of the chunks in which blobs and staged bytes are read back.
CHUNK_SIZE = 1024 * 1024
# A blob committed by a process that crashed before its catalog commit is an
# orphan; the grace period keeps a sweep away from another live process's
# blob that sits between its commit and its catalog commit (and from a staged
# upload whose catalog row is being created).
ORPHAN_GRACE_SECONDS = 3600.0


class BlobNotFoundError(FileNotFoundError):
    """No blob at that location (it may have been replaced and deleted since it was looked up)."""


class StagingBusyError(Exception):
    """Another request holds this staged upload (a concurrent PATCH or DELETE)."""


class StagedUploadGoneError(FileNotFoundError):
    """No staged bytes under that id (completed, terminated or swept)."""


@dataclass(frozen=True)
class SweepReport:
    """What a startup sweep removed."""

    temp_dirs: int = 0
    orphan_blobs: int = 0


class BlobWriter(Protocol):
    """A blob being written: invisible until ``commit()``."""

    def write(self, data: bytes) -> None:
        """Append bytes."""

    def commit(self) -> str:
        """Make the blob durable and permanent; return its location."""

    def abort(self) -> None:
        """Discard the blob (idempotent; a no-op after ``commit()``)."""


class BlobReader(Protocol):
    """An opened blob range: iterate for chunks; iteration closes it, or call ``close()``."""

    def __iter__(self) -> Iterator[bytes]:
        """Yield the bytes in chunks."""

    def close(self) -> None:
        """Release the handle (idempotent)."""


class StagedUpload(Protocol):
    """An exclusive hold on one staged upload; ``close()`` releases it."""

    def size(self) -> int:
        """Bytes staged so far (may exceed the catalog's offset after a crash)."""

    def truncate(self, size: int) -> None:
        """Drop every byte past ``size``."""

    def append(self, data: bytes) -> None:
        """Add bytes at the end."""

    def sync(self) -> None:
        """Make the appended bytes durable (before the catalog's offset moves past them)."""

    def keep(self) -> int:
        """Make durable what this store keeps of the appended bytes, drop the rest; return the
        size now staged (never less than before the appends)."""

    def chunks(self) -> Iterator[bytes]:
        """Everything staged, from the first byte (to hash it at completion)."""

    def promote(self, owner_id: int) -> str:
        """Turn the staged bytes into a committed (still unreferenced) blob of ``owner_id``;
        return its location."""

    def discard(self) -> None:
        """Delete the staged bytes."""

    def close(self) -> None:
        """Release the hold (idempotent)."""


class Staging(Protocol):
    """The staged uploads of one blob store, shared by every process using it."""

    def create(self, upload_id: str) -> None:
        """Create an empty staged upload; ids are never reused."""

    def claim(self, upload_id: str) -> StagedUpload:
        """Exclusive hold on a staged upload (``StagingBusyError``, ``StagedUploadGoneError``)."""

    def sweep(self, is_live: Callable[[str], bool]) -> int:
        """Remove old staged uploads no catalog row owns; return how many."""

    def concatenate(self, held: Sequence[StagedUpload], owner_id: int) -> str:
        """Join held staged uploads, in order, into one committed (still unreferenced) blob of
        ``owner_id`` without copying their bytes; they are gone afterwards. Return its location."""


class BlobStore(Protocol):
    """Storage for immutable blobs, with a staging area for resumable uploads."""

    @property
    def staging(self) -> Staging:
        """Where resumable uploads grow until they are promoted to blobs of this store."""

    def start(self) -> None:
        """Acquire per-process resources (call once before ``begin``)."""

    def begin(self, owner_id: int) -> BlobWriter:
        """Start writing a new blob of user ``owner_id`` (a store may group blobs by owner)."""

    def open(self, location: str, start: int = 0, end: int | None = None) -> BlobReader:
        """Open bytes ``[start, end)`` of a blob now; ``BlobNotFoundError`` if it is gone."""

    def delete(self, location: str) -> None:
        """Delete a committed blob (absent is fine)."""

    def sweep(self, is_referenced: Callable[[str], bool]) -> SweepReport:
        """Remove temporaries of dead processes and old blobs no catalog row references."""

    def close(self) -> None:
        """Release per-process resources."""
