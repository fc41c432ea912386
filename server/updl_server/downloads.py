"""Serving a file's bytes: Range handling and the streaming response."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from .attributes import attribute_headers
from .catalog import FileRecord
from .digests import repr_digest
from .errors import HTTPError
from .formats import http_date
from .numbers import parse_count
from .storage import BlobReader


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` to ``end`` of a file, both inclusive (as in HTTP)."""

    start: int
    end: int

    @property
    def length(self) -> int:
        """Number of bytes in the range."""
        return self.end - self.start + 1


class RangeNotSatisfiableError(Exception):
    """The single range asked for lies wholly outside the file."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range a ``Range`` header asks for, or ``None`` to send the whole file.

    Several ranges, another unit or a malformed header (a position that is not
    ASCII digits, or has more than 19) mean the whole file (RFC 9110 lets a
    server ignore Range). Raises ``RangeNotSatisfiableError``
    for a well-formed range that starts past the end, or a zero-length suffix.
    """
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    start, end = parse_count(first), parse_count(last)
    if not dash or (first and start is None) or (last and end is None):
        return None
    if start is None:
        if end is None:
            return None
        if end == 0 or size == 0:  # a suffix of ``end`` bytes
            raise RangeNotSatisfiableError
        return ByteRange(max(0, size - end), size - 1)
    if end is not None and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiableError
    return ByteRange(start, min(end, size - 1) if end is not None else size - 1)


def etag(record: FileRecord) -> str:
    """The strong ETag of a file version: its quoted MD5."""
    return f'"{record.md5}"'


def wanted_range(record: FileRecord, range_header: str | None, if_range: str | None) -> ByteRange | None:
    """The range to serve after ``If-Range``; raises the contract's 416 ``HTTPError``."""
    if range_header is None or (if_range is not None and if_range.strip() != etag(record)):
        return None
    try:
        return parse_range(range_header, record.size)
    except RangeNotSatisfiableError:
        raise HTTPError(
            416,
            "requested range not satisfiable",
            size=record.size,
            headers={"Content-Range": f"bytes */{record.size}"},
        ) from None


def file_headers(record: FileRecord, byte_range: ByteRange | None) -> dict[str, str]:
    """The headers of a 200 or 206 answer for ``record``."""
    headers = {
        "ETag": etag(record),
        "Accept-Ranges": "bytes",
        "Last-Modified": http_date(record.created),
        "Content-Type": "application/octet-stream",
        **attribute_headers(record),
        # RFC 9530: the digests of the whole file (the representation), on a 206 as well.
        "Repr-Digest": repr_digest(record.md5, record.sha256),
    }
    if record.expires is not None:
        headers["Updl-Expires"] = http_date(record.expires)  # when the server deletes it (retention.py)
    if byte_range is None:
        headers["Content-Length"] = str(record.size)
        headers["Content-MD5"] = base64.b64encode(bytes.fromhex(record.md5)).decode("ascii")
    else:
        headers["Content-Length"] = str(byte_range.length)
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{record.size}"
    return headers


def head_response(record: FileRecord, byte_range: ByteRange | None) -> Response:
    """The answer to ``HEAD``: a ``GET``'s status and headers, no body."""
    status = 200 if byte_range is None else 206
    return Response(status_code=status, headers=file_headers(record, byte_range))


def stream_response(record: FileRecord, byte_range: ByteRange | None, reader: BlobReader) -> StreamingResponse:
    """The answer to ``GET``: the already-open blob, streamed in chunks."""
    status = 200 if byte_range is None else 206
    # The background close covers a client that leaves before the stream ends.
    return StreamingResponse(
        reader, status_code=status, headers=file_headers(record, byte_range), background=BackgroundTask(reader.close)
    )


def reader_bounds(byte_range: ByteRange | None) -> tuple[int, int | None]:
    """``(start, end)`` for ``BlobStore.open`` (end exclusive) from an HTTP range."""
    if byte_range is None:
        return 0, None
    return byte_range.start, byte_range.end + 1
