"""Uploads: which way a source goes (multipart or tus), and the multipart attempt.

A source is a path, a seekable binary stream, or a pipe; each has its own way
to become a seekable file positioned where the upload starts (see
:func:`open_source`). A path of at least the resumable threshold goes over
tus instead (:mod:`updl.sdk.tus`), in checksummed chunks that resume.

A multipart upload is one pass per attempt: the encoder pulls the file
through a :class:`~updl.sdk.hashing.HashingReader` and the ``md5`` field,
sent last, is read lazily from that reader once the file part is done
(:class:`DigestField`). A fresh encoder per attempt: an encoder cannot be
rewound.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, cast

from requests_toolbelt import MultipartEncoder

from .attributes import FileAttributes, local_attributes
from .dedup import dedup_candidate, offer_file
from .errors import ChecksumMismatchError, PreconditionFailedError
from .hashing import CHUNK_SIZE, HashingReader, digest_file
from .models import FileInfo
from .progress import ProgressCallback, ProgressEvent, reporting
from .resume import ResumeStore
from .retry import Retrier
from .transport import Transport, file_path, json_object
from .tus import TusUpload
from .tus_parts import PART_CHUNK_SIZE, PartedUpload

__all__ = ["DigestField", "Source", "conditional_headers", "open_source", "upload", "upload_multipart"]

Source = str | os.PathLike[str] | BinaryIO
_MD5 = re.compile(r"[0-9a-f]{32}")
EXPIRES_HEADER = "Updl-Expires-In"  # seconds the server keeps the file (docs/api.md, "Retention")


class DigestField:
    """The multipart ``md5`` (or ``sha256``) value, read only after the file part has been read.

    requests-toolbelt sizes every part up front (``len`` = 32 here, 64 for
    SHA-256) and reads the parts in order, so when it gets to this one the
    reader has seen the whole file and its digest is final. It checks once
    more that the file did not change (an empty file has no last read to check on).
    """

    def __init__(self, reader: HashingReader, algorithm: str = "md5") -> None:
        self._reader = reader
        self._algorithm = algorithm
        self._length = 64 if algorithm == "sha256" else 32
        self._value: bytes | None = None
        self._sent = 0

    def __len__(self) -> int:
        return self._length - self._sent

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes of the hex digest (all that is left by default)."""
        if self._value is None:
            if self._reader.remaining:
                raise RuntimeError(f"{self._algorithm} field read before the file part was complete")
            self._reader.check_unchanged()
            digest = self._reader.sha256_hexdigest() if self._algorithm == "sha256" else self._reader.hexdigest()
            assert digest is not None
            self._value = digest.encode("ascii")
        end = self._length if size is None or size < 0 else min(self._length, self._sent + size)
        chunk = self._value[self._sent : end]
        self._sent = end
        return chunk


# -- sources: each becomes a seekable binary file and a default name ---------------------


@contextlib.contextmanager
def _path_source(path: Path) -> Iterator[tuple[BinaryIO, str | None]]:
    with path.open("rb") as f:
        yield f, path.name


def _stream_name(stream: BinaryIO) -> str | None:
    raw_name = getattr(stream, "name", None)
    return os.path.basename(raw_name) if isinstance(raw_name, str) and not raw_name.startswith("<") else None


@contextlib.contextmanager
def _pipe_source(pipe: BinaryIO) -> Iterator[tuple[BinaryIO, str | None]]:
    # A pipe cannot be rewound or measured, and the multipart body needs a length:
    # spool it to a temporary file once (hashing happens on the real upload pass),
    # which also makes retries possible.
    with tempfile.TemporaryFile() as spool:
        shutil.copyfileobj(pipe, spool, CHUNK_SIZE)
        spool.seek(0)
        yield cast(BinaryIO, spool), _stream_name(pipe)


def _is_seekable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, ValueError):
        return False


def open_source(source: Source) -> contextlib.AbstractContextManager[tuple[BinaryIO, str | None]]:
    """Yield a seekable binary file positioned where the upload starts, and a default name.

    A path is opened; a seekable stream is used as it is, from its current
    position; a pipe is spooled to a temporary file first.
    """
    if isinstance(source, (str, os.PathLike)):
        return _path_source(Path(source))
    if _is_seekable(source):
        return contextlib.nullcontext((source, _stream_name(source)))
    return _pipe_source(source)


# -- the operation ---------------------------------------------------------------------


def upload(
    transport: Transport,
    store: ResumeStore,
    source: Source,
    name: str | None,
    *,
    retrier: Retrier,
    resumable_threshold: int,
    chunk_size: int,
    parts: int = 1,
    on_progress: ProgressCallback | None = None,
    progress: bool = False,
    no_clobber: bool = False,
    if_match: str | None = None,
    expires_in: int | None = None,
    preserve: bool = True,
    checksum: str = "md5",
    sha256: str | None = None,
    dedup: bool = False,
) -> FileInfo:
    """Upload ``source`` as ``name`` (default: its base name), retried by ``retrier``; see ``Client.upload``."""
    conditions = conditional_headers(no_clobber, if_match)
    expiry = {EXPIRES_HEADER: str(expires_in)} if expires_in is not None else {}
    attributes = local_attributes(source) if preserve else None
    candidate = dedup_candidate(source) if dedup else None
    if candidate is not None:
        terms = {**conditions, **expiry, **(attributes.headers() if attributes else {})}
        linked, digests = offer_file(transport, retrier, candidate, name or candidate.name, terms)
        if linked is not None:
            return linked
        sha256 = digests["sha256"]  # the server verifies it as it receives the bytes
    # The tus routes take no preconditions: a conditional upload goes as one multipart body,
    # which the server checks before reading it and again, atomically, when it commits.
    if isinstance(source, (str, os.PathLike)) and not conditions:
        path = Path(source)
        if path.is_file() and path.stat().st_size >= resumable_threshold:
            name = name or path.name
            if checksum == "sha256" and sha256 is None:
                sha256 = digest_file(path, ("sha256",))["sha256"]  # a tus creation claims it up front
            with reporting(on_progress, progress, name) as report:
                if parts > 1:  # parallel partial uploads, joined by the server (tus Concatenation)
                    part_chunk = chunk_size or PART_CHUNK_SIZE  # parts go in checksummed PATCHes
                    parted = PartedUpload(
                        transport, store, path, name, part_chunk, parts, report, expires_in, attributes, sha256=sha256
                    )
                    return retrier.run(parted.run, name)
                resumable = TusUpload(
                    transport, store, path, name, chunk_size, report, expires_in, attributes, sha256=sha256
                )
                return retrier.run(resumable.run, name)
    with open_source(source) as (fileobj, default_name):
        name = name or default_name
        if not name:
            raise ValueError("name is required when the source has no file name")
        start = fileobj.tell()
        with reporting(on_progress, progress, name) as report:

            def attempt(number: int) -> FileInfo:
                fileobj.seek(start)
                # The SHA-256 known before the first attempt; a retry hashes on the way (the file may have changed).
                claim: str | bool = sha256 if sha256 and number == 1 else bool(sha256) or checksum == "sha256"
                try:
                    return upload_multipart(
                        transport,
                        fileobj,
                        name,
                        number,
                        report,
                        {**conditions, **expiry},
                        attributes,
                        sha256=claim,
                    )
                except PreconditionFailedError as exc:
                    if number > 1 and exc.current_md5 is not None and exc.current_md5 == _md5_from(fileobj, start):
                        # An earlier attempt was stored but its answer was lost: the version the
                        # condition now refuses is this upload's own (same bytes), so it succeeded.
                        return FileInfo.from_json(json_object(transport.request("GET", file_path("info", name))))
                    raise

            return retrier.run(attempt, name)


def _md5_from(fileobj: BinaryIO, start: int) -> str:
    """MD5 of ``fileobj`` from ``start`` to its end (read again: only after a lost answer)."""
    fileobj.seek(start)
    digest = hashlib.md5()
    while chunk := fileobj.read(CHUNK_SIZE):
        digest.update(chunk)
    return digest.hexdigest()


def conditional_headers(no_clobber: bool, if_match: str | None) -> dict[str, str]:
    """The precondition headers of an upload: ``If-None-Match: *`` and/or ``If-Match: "<md5>"``."""
    headers: dict[str, str] = {}
    if no_clobber:
        headers["If-None-Match"] = "*"
    if if_match is not None:
        md5 = if_match.strip().strip('"').lower()
        if not _MD5.fullmatch(md5):
            raise ValueError(f"if_match must be an MD5 of 32 hex digits, not {if_match!r}")
        headers["If-Match"] = f'"{md5}"'
    return headers


def upload_multipart(
    transport: Transport,
    fileobj: BinaryIO,
    name: str,
    attempt: int,
    report: ProgressCallback,
    conditions: Mapping[str, str] | None = None,
    attributes: FileAttributes | None = None,
    *,
    sha256: str | bool | None = None,
) -> FileInfo:
    """One ``POST /upload`` of ``fileobj`` from its position to its end; the stored file, checked.

    ``attributes`` (mode, mtime) go as fields before the file part. ``sha256``:
    also claim the file's SHA-256 — this hex digest (known before sending), or
    ``True`` to compute it on the way (sent after the file, as the MD5 is).
    """
    total: int | None = None

    def on_read(position: int) -> None:
        report(ProgressEvent(name, position, total, attempt))

    reader = HashingReader(fileobj, on_read, sha256=sha256 is True)
    total = reader.size
    report(ProgressEvent(name, 0, total, attempt))
    fields: list[tuple[str, Any]] = [("name", name), *(attributes.fields() if attributes else [])]
    if isinstance(sha256, str):
        fields.append(("sha256", sha256))
    fields.append(("file", (os.path.basename(name) or name, reader, "application/octet-stream")))
    fields.append(("md5", DigestField(reader)))  # after the file: its value exists only once the file is read
    if sha256 is True:
        fields.append(("sha256", DigestField(reader, "sha256")))
    # A fresh encoder per attempt: an encoder cannot be rewound.
    encoder = MultipartEncoder(fields=fields)
    response = transport.request(
        "POST",
        "/upload",
        data=encoder,
        headers={"Content-Type": encoder.content_type, **(conditions or {})},
    )
    info = FileInfo.from_json(json_object(response))
    sent = reader.hexdigest()
    if info.md5 != sent:
        raise ChecksumMismatchError(
            f"checksum mismatch (the server stored md5 {info.md5}, the client sent {sent})",
            expected=sent,
            actual=info.md5,
            response=response,
        )
    claimed = sha256 if isinstance(sha256, str) else reader.sha256_hexdigest()
    check_sha256(info, claimed)
    return info


def check_sha256(info: FileInfo, sent: str | None) -> None:
    """``ChecksumMismatchError`` when the server reports a SHA-256 other than the one the client sent."""
    if sent is not None and info.sha256 is not None and info.sha256 != sent:
        raise ChecksumMismatchError(
            f"checksum mismatch (the server stored sha256 {info.sha256}, the client sent {sent})",
            expected=sent,
            actual=info.sha256,
        )
