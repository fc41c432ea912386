"""The tus 1.0 protocol as this server speaks it: versions, extensions, header parsing, errors.

Everything here turns headers into values or values into error answers;
nothing holds state. The state machine (:mod:`.service`) and the routes
(:mod:`.routes`) both use it, so an error looks the same wherever it is raised.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..attributes import Attributes
from ..digests import parse_sha256_hex
from ..errors import HTTPError, bad_request, too_large
from ..formats import MD5_HEX
from ..names import validate_name
from ..numbers import count_field
from ..retention import TUS_EXPIRES_KEY, checked_expires_in

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,checksum,termination,expiration,concatenation"
# Creation headers of extensions we do not offer, refused rather than ignored.
UNSUPPORTED_CREATION = {"upload-defer-length": "creation-defer-length"}
# Stored with the upload and echoed by every HEAD; a name and an MD5 need under 2 KiB.
MAX_METADATA_BYTES = 8 * 1024


class Crc32:
    """CRC-32 (as zlib computes it) behind the ``update``/``digest`` interface of hashlib.

    Enough to catch a chunk damaged in transit, at about five times the speed of MD5;
    the whole file's MD5 still decides whether anything is stored. tusd offers it too.
    """

    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


CHECKSUMS: dict[str, Callable[[], Any]] = {
    "crc32": Crc32,
    "md5": lambda: hashlib.md5(usedforsecurity=False),
    "sha1": lambda: hashlib.sha1(usedforsecurity=False),
    "sha256": hashlib.sha256,
}
OFFSET_STREAM = "application/offset+octet-stream"
_KEY = re.compile(r"^[^\s,]+$")


@dataclass(frozen=True)
class Checksum:
    """A PATCH's ``Upload-Checksum``: the algorithm and the digest of the body."""

    algorithm: str
    digest: bytes


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


def refuse_unsupported(headers: Mapping[str, str]) -> None:
    """Before anything is created: 400 for a creation that needs an extension this server
    lacks, 431 for an ``Upload-Metadata`` longer than ``MAX_METADATA_BYTES``."""
    for header, extension in UNSUPPORTED_CREATION.items():
        if header in headers:
            raise bad_request(
                f"{header.title()} needs the tus {extension!r} extension, which "
                f"this server does not offer; upload the file as one upload",
                supported=TUS_EXTENSIONS,
            )
    size = len(headers.get("upload-metadata", "").encode("latin-1"))
    if size > MAX_METADATA_BYTES:
        raise HTTPError(
            431,
            f"Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes",
            max_metadata_bytes=MAX_METADATA_BYTES,
            size=size,
        )


def parse_checksum(header: str | None) -> Checksum | None:
    """``Upload-Checksum: <algorithm> <base64 digest>``; 400 for an unsupported or malformed one."""
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUMS:
        raise bad_request(f"unsupported checksum algorithm {algorithm!r}", supported=",".join(CHECKSUMS))
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("malformed Upload-Checksum (expected: ALGORITHM BASE64)") from None
    return Checksum(algorithm, digest)


def parse_final_md5(header: str | None) -> str | None:
    """``Upload-Md5``: the whole file's MD5 (32 hex), on the completing PATCH; 400 if malformed."""
    if header is None:
        return None
    value = header.strip()
    if not MD5_HEX.match(value):
        raise bad_request("Upload-Md5 must be the whole file's MD5 as 32 hex digits", upload_md5=header)
    return value.lower()


def not_final(length: int) -> HTTPError:
    """400: ``Upload-Md5`` came on a PATCH that does not complete the upload."""
    return bad_request(
        "Upload-Md5 belongs on the PATCH that completes the upload (its body must end at Upload-Length)", length=length
    )


def header_int(headers: Mapping[str, str], header: str) -> int:
    """A required non-negative integer header; 400 naming it (``Upload-Length``) otherwise."""
    field = "-".join(word.capitalize() for word in header.split("-"))
    return count_field(headers.get(header), field)


def offset_conflict(current: int, sent: int) -> HTTPError:
    """409: the PATCH is not at the upload's offset (HEAD tells where to continue)."""
    return HTTPError(
        409, "Upload-Offset does not match the upload's offset; HEAD it and resume", offset=current, sent=sent
    )


def no_such_upload(upload_id: str) -> HTTPError:
    """404 for an unknown upload, or another user's (the two look the same)."""
    return HTTPError(404, "no such upload", upload=upload_id)


@dataclass(frozen=True)
class NewUpload:
    """A creation request, validated: what to store, under which name, with which MD5."""

    length: int
    name: str
    md5: str | None  # lower-case hex, from Upload-Metadata
    metadata: str  # the raw Upload-Metadata, echoed by HEAD
    expires_in: int | None = None  # seconds, from Upload-Metadata's expires_in (retention.py)
    partial: bool = False  # Upload-Concat: partial (a part of a later concatenation)
    sha256: str | None = None  # lower-case hex, from Upload-Metadata


def expires_in_of(metadata: Mapping[str, str]) -> int | None:
    """The ``expires_in`` of parsed ``Upload-Metadata`` (seconds), ``None`` if absent; 400 if malformed."""
    return checked_expires_in(metadata.get(TUS_EXPIRES_KEY), "expires_in in Upload-Metadata")


def parse_creation(headers: Mapping[str, str], max_size: int, *, partial: bool = False) -> NewUpload:
    """``Upload-Length`` (413 past ``max_size``) and ``Upload-Metadata`` with ``name`` and
    optional ``md5`` and ``sha256``; 400 for anything malformed (``refuse_unsupported`` comes first).

    A ``partial`` upload needs no name: the final upload that concatenates it names the file.
    """
    length = header_int(headers, "upload-length")
    if length > max_size:
        raise too_large(max_size)
    raw_metadata = headers.get("upload-metadata", "")
    claims = parse_claims(raw_metadata, required=not partial)
    expires_in = expires_in_of(parse_metadata(raw_metadata))
    return NewUpload(length, claims.name, claims.md5, raw_metadata, expires_in, partial, claims.sha256)


class Claims(NamedTuple):
    """What an ``Upload-Metadata`` says of the file: its name and the digests the client claims."""

    name: str  # "" for a partial upload, which needs none
    md5: str | None  # lower-case hex
    sha256: str | None  # lower-case hex


def parse_claims(raw_metadata: str, *, required: bool = True) -> Claims:
    """The ``name`` (or ``filename``, validated), optional ``md5`` and ``sha256`` of an ``Upload-Metadata``."""
    metadata = parse_metadata(raw_metadata)
    name = metadata.get("name") or metadata.get("filename") or ""
    if required and not name:
        raise bad_request("Upload-Metadata needs a 'name' (or 'filename') to store under")
    if name:
        validate_name(name)
    md5 = metadata.get("md5")
    if md5 is not None and not MD5_HEX.match(md5):
        raise bad_request("md5 in Upload-Metadata must be 32 hex digits", md5=md5)
    Attributes.parse(metadata.get("mode"), metadata.get("mtime"))  # 400 now, not when the upload completes
    sha256 = metadata.get("sha256")
    return Claims(
        name,
        None if md5 is None else md5.lower(),
        None if sha256 is None else parse_sha256_hex(sha256, "Upload-Metadata"),
    )


def metadata_attributes(raw_metadata: str) -> Attributes:
    """The attributes in an upload's stored ``Upload-Metadata`` (checked by ``parse_creation``)."""
    metadata = parse_metadata(raw_metadata)
    return Attributes.parse(metadata.get("mode"), metadata.get("mtime"))


def unsupported_version(sent: str | None) -> HTTPError:
    """412: a request without ``Tus-Resumable: 1.0.0``."""
    return HTTPError(
        412,
        f"missing or unsupported Tus-Resumable; this server speaks tus {TUS_VERSION}",
        headers={"Tus-Version": TUS_VERSION},
        tus_resumable=sent,
    )


def not_offset_stream() -> HTTPError:
    """415: a PATCH whose body is not ``application/offset+octet-stream``."""
    return HTTPError(415, f"PATCH needs Content-Type: {OFFSET_STREAM}")


def past_length(length: int) -> HTTPError:
    """400: the body would take the upload past its ``Upload-Length``."""
    return bad_request("the body goes past Upload-Length", length=length)


def checksum_mismatch(algorithm: str, offset: int) -> HTTPError:
    """460: the PATCH body does not match its ``Upload-Checksum`` (nothing of it is kept)."""
    return HTTPError(
        460, "checksum mismatch: the body does not match Upload-Checksum", algorithm=algorithm, offset=offset
    )


def moved_on(sent: int) -> HTTPError:
    """409: another writer advanced the upload between our read and our compare-and-set."""
    return HTTPError(409, "the upload moved on concurrently; HEAD it and resume", sent=sent)


def upload_busy(upload_id: str, stall_timeout: float) -> HTTPError:
    """423: another request holds the upload; it lets go within ``stall_timeout`` if stalled."""
    retry_after = math.ceil(stall_timeout)
    return HTTPError(
        423,
        f"another request is writing to this upload; try again shortly "
        f"(one that stalled lets go within {retry_after} s)",
        headers={"Retry-After": str(retry_after)},
        upload=upload_id,
    )


def upload_expired(upload_id: str) -> HTTPError:
    """410: an unfinished upload past its ``Upload-Expires`` (it is removed)."""
    return HTTPError(410, "upload expired", upload=upload_id)
