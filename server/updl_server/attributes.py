"""File attributes a client records on upload: permission bits (``mode``) and modification time (``mtime``).

One place parses and formats them for every upload path (multipart fields
``mode``/``mtime``, ``PUT`` headers ``Updl-Mode``/``Updl-Mtime``, tus
``Upload-Metadata`` keys ``mode``/``mtime``) and every answer (FileInfo JSON,
``Updl-Mode``/``Updl-Mtime`` on ``GET``/``HEAD``). Both are optional: a file
uploaded without them has ``null``. The server only stores and returns them;
what a client does with them (restore the executable bit, set the time) is
the client's business.

- ``mode``: the permission bits as 1 to 4 octal digits (``755``, ``0644``),
  at most ``0777``: setuid, setgid and sticky bits are refused (a client that
  restored them would make a downloaded file run as its owner). Answered as 4
  digits (``0755``).
- ``mtime``: ISO 8601 (``2026-12-04T06:30:00.123456Z``; no zone means UTC),
  at most 40 characters, between years 1 and 9999 (what both databases hold).
  Answered like every other time of the API (UTC, microseconds, ``Z``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .errors import bad_request

if TYPE_CHECKING:
    from .catalog import FileRecord

__all__ = [
    "NO_ATTRIBUTES",
    "Attributes",
    "attribute_headers",
    "format_mode",
    "format_mtime",
    "parse_mode",
    "parse_mtime",
]

MAX_MODE = 0o777
MAX_MTIME_CHARS = 40
_OCTAL = re.compile(r"^[0-7]{1,4}$")
MODE_HEADER = "Updl-Mode"
MTIME_HEADER = "Updl-Mtime"


@dataclass(frozen=True)
class Attributes:
    """What the client said about the file besides its bytes (``None``: not said)."""

    mode: int | None = None
    mtime: datetime | None = None  # naive UTC, as the catalog stores times

    @classmethod
    def parse(cls, mode: str | None, mtime: str | None) -> Attributes:
        """Both values as sent (``None``: absent); 400 for a malformed one."""
        return cls(parse_mode(mode), parse_mtime(mtime))


#: A file uploaded without attributes.
NO_ATTRIBUTES = Attributes()


def parse_mode(raw: str | None) -> int | None:
    """Permission bits from 1 to 4 octal digits, at most ``0777``; 400 otherwise."""
    if raw is None:
        return None
    value = raw.strip()
    if not _OCTAL.match(value) or int(value, 8) > MAX_MODE:
        raise bad_request("mode must be 1 to 4 octal digits of permission bits, at most 0777", mode=raw[:16])
    return int(value, 8)


def parse_mtime(raw: str | None) -> datetime | None:
    """A modification time in ISO 8601 (no zone: UTC) as naive UTC; 400 if malformed or too long."""
    if raw is None:
        return None
    value = raw.strip()
    try:
        if len(value) > MAX_MTIME_CHARS or not value.isascii():
            raise ValueError(value)
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise bad_request(
            "mtime must be an ISO 8601 time such as 2026-12-04T06:30:00.123456Z", mtime=raw[:MAX_MTIME_CHARS]
        ) from None
    return parsed


def format_mode(mode: int | None) -> str | None:
    """``0755``-style, or ``None``."""
    return None if mode is None else f"{mode:04o}"


def format_mtime(moment: datetime | None) -> str | None:
    """A stored time as the API writes times (UTC, microseconds, ``Z``), or ``None``."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def attribute_headers(record: FileRecord) -> dict[str, str]:
    """``Updl-Mode``/``Updl-Mtime`` of a stored file (absent ones left out)."""
    headers: dict[str, str] = {}
    mode, mtime = format_mode(record.mode), format_mtime(record.mtime)
    if mode is not None:
        headers[MODE_HEADER] = mode
    if mtime is not None:
        headers[MTIME_HEADER] = mtime
    return headers
