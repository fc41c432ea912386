"""What the SDK reads from response headers: counts, dates, the file's MD5, and a FileInfo.

The one place header values are parsed. They come from a server the client
does not trust to be well-formed, so every parser answers ``None`` for a value
it cannot read rather than raising, and the caller decides what a missing
value means.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
from datetime import UTC, datetime

import requests
from http_sfv.dictionary import Dictionary

from .attributes import parse_mode
from .errors import ProtocolError
from .models import FileInfo

__all__ = [
    "MAX_COUNT_DIGITS",
    "expected_md5",
    "expected_total",
    "file_info",
    "header_time",
    "parse_count",
    "parse_retry_after",
    "repr_sha256",
    "server_etag",
    "stored_md5",
]

#: Digits in a count a server may send (2**63 - 1 has 19): more is no size, only an attack.
MAX_COUNT_DIGITS = 19
_MAX_DIGEST_HEADER = 1024
_HEX = frozenset("0123456789abcdef")


def parse_count(value: str | None) -> int | None:
    """A non-negative count from a header (``Content-Length``, ``Upload-Offset``, ...), or None.

    Only ASCII digits, at most :data:`MAX_COUNT_DIGITS` of them: ``str.isdigit``
    also takes ``²`` (which ``int`` refuses) and ``int`` refuses over 4300 digits.
    """
    value = (value or "").strip()
    if not value or len(value) > MAX_COUNT_DIGITS or not value.isascii() or not value.isdigit():
        return None
    return int(value)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    seconds = parse_count(value)
    if seconds is not None:
        return float(seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.now(UTC).timestamp() if now is None else now
    return max(when.timestamp() - current, 0.0)


def header_time(value: str | None) -> datetime | None:
    """An HTTP date header as an aware datetime, or ``None``."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def expected_md5(response: requests.Response) -> str | None:
    """The server's MD5 of the file: ``Content-MD5`` (base64) or else a strong ``ETag`` (hex).

    After a redirect (a server that sends downloads to presigned storage URLs)
    the updl server's own answer is asked first: a store's ETag is not the MD5
    of a multipart object.
    """
    for answer in (*response.history[:1], response):
        md5 = _md5_from_headers(answer)
        if md5 is not None:
            return md5
    return None


def server_etag(response: requests.Response) -> str | None:
    """The updl server's ``ETag`` (the first answer of a redirect chain), for ``If-Range``."""
    return (response.history[0] if response.history else response).headers.get("ETag")


def _md5_from_headers(response: requests.Response) -> str | None:
    content_md5 = response.headers.get("Content-MD5")
    if content_md5:
        try:
            digest = base64.b64decode(content_md5, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) == 16:
            return digest.hex()
    etag = response.headers.get("ETag", "")
    if etag and not etag.startswith("W/"):
        value = etag.strip('"').lower()
        if len(value) == 32 and _HEX.issuperset(value):
            return value
    return None


def repr_sha256(response: requests.Response) -> str | None:
    """The file's SHA-256 from RFC 9530 ``Repr-Digest`` (``sha-256=:<base64>:``), or None.

    Parsed as the Structured Fields dictionary it is (http-sfv); after a
    redirect the updl server's own answer is asked first, as for the MD5.
    """
    for answer in (*response.history[:1], response):
        value = answer.headers.get("Repr-Digest")
        if not value or len(value) > _MAX_DIGEST_HEADER:
            continue
        parsed = Dictionary()
        try:
            parsed.parse(value.encode("ascii"))
        except (ValueError, UnicodeError):
            continue
        if "sha-256" in parsed:
            digest = getattr(parsed["sha-256"], "value", None)
            if isinstance(digest, bytes) and len(digest) == 32:
                return digest.hex()
    return None


def stored_md5(response: requests.Response) -> str | None:
    """The MD5 a completed tus upload stored (``Upload-Md5``, updl's extension), or None."""
    md5 = response.headers.get("Upload-Md5", "").strip().lower()
    return md5 if len(md5) == 32 and _HEX.issuperset(md5) else None


def expected_total(response: requests.Response, name: str, size: int | None = None) -> int | None:
    """The whole file's size as the answer announces it, or else ``size`` (what a listing said).

    ``ProtocolError`` when both are known and differ: the file is not the one that was listed.
    """
    announced = _total(response)
    if size is not None and announced is not None and announced != size:
        raise ProtocolError(
            f"{name}: the server announced {announced} bytes but listed {size}; "
            "it changed meanwhile — run the command again",
            response=response,
        )
    return announced if announced is not None else size


def _total(response: requests.Response) -> int | None:
    """The whole file's size: from ``Content-Range`` on a 206, else ``Content-Length``."""
    if response.status_code == 206:
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
    else:
        total = response.headers.get("Content-Length", "")
    return parse_count(total)


def file_info(response: requests.Response, name: str, size: int, md5: str, *, accessed: bool = False) -> FileInfo:
    """The stored file an answer without a JSON body describes (a download, ``HEAD``, a tus completion).

    ``created`` is ``Last-Modified`` (second precision; now if absent). ``accessed``:
    the answer is a download, which the server counts as an access at its ``Date``.
    ``mode``/``mtime`` come from ``Updl-Mode``/``Updl-Mtime`` (the updl server's
    own answer first, as for the MD5 after a redirect).
    """
    own = response.history[0] if response.history else response
    mtime = own.headers.get("Updl-Mtime")
    try:
        recorded = datetime.fromisoformat(mtime.strip()) if mtime else None
    except ValueError:
        recorded = None
    return FileInfo(
        name=name,
        size=size,
        md5=md5,
        created=header_time(response.headers.get("Last-Modified")) or datetime.now(UTC),
        last_accessed=header_time(response.headers.get("Date")) if accessed else None,
        expires=header_time(response.headers.get("Updl-Expires")),
        mode=parse_mode(own.headers.get("Updl-Mode")),
        mtime=None if recorded is None else recorded if recorded.tzinfo else recorded.replace(tzinfo=UTC),
        sha256=repr_sha256(response),
    )
