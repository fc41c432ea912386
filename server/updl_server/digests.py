"""Digests beyond MD5: SHA-256 as the server computes, stores and announces it.

Clients claim a digest in RFC 9530 ``Repr-Digest`` or ``Content-Digest``
(a Structured Fields dictionary such as ``sha-256=:<base64>:, md5=:<base64>:``,
parsed with http-sfv, never by hand), in a multipart ``sha256`` field or in tus
``Upload-Metadata``; the server announces both digests in ``Repr-Digest`` on
``GET``/``HEAD``. Hex is the form stored and compared (as for MD5).
"""

from __future__ import annotations

import base64
import re

from http_sfv.dictionary import Dictionary

from .errors import bad_request

# A SHA-256 as clients send it in text: 64 hex digits, either case (compared lower-cased).
SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
# RFC 9530's names for the algorithms updl knows, and their digest lengths.
_ALGORITHMS = {"sha-256": ("sha256", 32), "md5": ("md5", 16)}
# Longer than any digest header a client needs to send (two digests in base64 and a little more).
MAX_DIGEST_HEADER = 1024


def parse_sha256_hex(value: str, where: str) -> str:
    """Lower-case hex from a text claim (multipart field, tus metadata); 400 if it is not 64 hex digits."""
    value = value.strip()
    if not SHA256_HEX.match(value):
        raise bad_request(f"sha256 in {where} must be 64 hex digits", sha256=value[:100])
    return value.lower()


def parse_digest_fields(header: str, field: str) -> dict[str, str]:
    """``{"sha256": hex, "md5": hex}`` (those present) from a ``Repr-Digest``/``Content-Digest`` value.

    Unknown algorithms are ignored, as RFC 9530 says; a value that is not a
    Structured Fields dictionary, or a known digest that is no byte sequence of
    the right length, is a 400.
    """
    if len(header) > MAX_DIGEST_HEADER:
        raise bad_request(f"{field} is longer than {MAX_DIGEST_HEADER} characters")
    parsed = Dictionary()
    try:
        parsed.parse(header.encode("ascii"))
    except (ValueError, UnicodeError) as exc:
        raise bad_request(f"malformed {field}: {exc}", value=header[:200]) from None
    found: dict[str, str] = {}
    for key, (ours, length) in _ALGORITHMS.items():
        if key not in parsed:
            continue
        value = getattr(parsed[key], "value", None)
        if not isinstance(value, bytes) or len(value) != length:
            raise bad_request(f"malformed {field}: {key} must be a byte sequence of {length} bytes", value=header[:200])
        found[ours] = value.hex()
    return found


def repr_digest(md5: str, sha256: str | None) -> str:
    """The ``Repr-Digest`` of a stored file: ``sha-256=:...:, md5=:...:`` (SHA-256 when known)."""
    parts = [] if sha256 is None else [f"sha-256=:{_b64(sha256)}:"]
    return ", ".join([*parts, f"md5=:{_b64(md5)}:"])


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")
