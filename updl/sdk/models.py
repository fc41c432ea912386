"""Value objects exchanged with the server."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .attributes import format_mode, parse_mode
from .errors import ProtocolError

__all__ = ["FileInfo", "Prefix", "Usage", "format_time", "parse_time"]

_SHA256 = re.compile(r"[0-9a-f]{64}")


def parse_time(value: str) -> datetime:
    """Parse the API's ISO 8601 UTC time (``2026-11-27T21:42:47.123456Z``) into an aware datetime."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def format_time(value: datetime) -> str:
    """Format an aware datetime the way the API does: UTC with a ``Z`` suffix."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class FileInfo:
    """A stored file: its name, size in bytes, MD5 and SHA-256 (lowercase hex) and times (UTC).

    ``sha256`` is ``None`` from a server that does not compute it, or for files
    stored before it did. ``mode`` (permission bits) and ``mtime`` are what the
    uploader recorded of the local file (``None``: nothing; see :mod:`updl.sdk.attributes`).
    """

    name: str
    size: int
    md5: str
    created: datetime
    last_accessed: datetime | None = None
    expires: datetime | None = None  # when the server deletes it; None: kept until deleted
    mode: int | None = None
    mtime: datetime | None = None
    sha256: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileInfo:
        """Build from the API's FileInfo object; :class:`~updl.sdk.errors.ProtocolError` if malformed."""
        try:
            last = data.get("last_accessed")
            expires = data.get("expires")
            mtime = data.get("mtime")
            size = data["size"]
            if type(size) is not int or size < 0:  # a JSON number; not a bool, "12" or "²"
                raise ValueError(f"size {size!r}")
            sha256 = data.get("sha256")
            if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256.lower())):
                raise ValueError(f"sha256 {sha256!r:.80}")
            return cls(
                name=str(data["name"]),
                size=size,
                md5=str(data["md5"]).lower(),
                created=parse_time(data["created"]),
                last_accessed=parse_time(last) if last else None,
                expires=parse_time(expires) if expires else None,
                mode=parse_mode(data.get("mode")),
                mtime=parse_time(mtime) if isinstance(mtime, str) and mtime else None,
                sha256=None if sha256 is None else sha256.lower(),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"the server sent a malformed file record ({exc})") from exc

    def to_json(self) -> dict[str, Any]:
        """The API's FileInfo object (JSON-ready)."""
        return {
            "name": self.name,
            "size": self.size,
            "md5": self.md5,
            "created": format_time(self.created),
            "last_accessed": format_time(self.last_accessed) if self.last_accessed else None,
            "expires": format_time(self.expires) if self.expires else None,
            "mode": format_mode(self.mode) if self.mode is not None else None,
            "mtime": format_time(self.mtime) if self.mtime else None,
            **({"sha256": self.sha256} if self.sha256 else {}),
        }


@dataclass(frozen=True)
class Prefix:
    """A common prefix of a folder-style listing (a "folder"): ``name`` ends with the delimiter."""

    name: str

    def to_json(self) -> dict[str, Any]:
        """The record ``updl ls --json`` prints for a folder."""
        return {"prefix": self.name}


@dataclass(frozen=True)
class Usage:
    """How many files start with ``prefix`` and their total size in bytes (``updl du``).

    With the user's quota (``None``: unlimited; servers before quotas send none)
    and the whole usage it is measured against, and the retention in seconds.
    """

    prefix: str
    files: int
    bytes: int
    quota_bytes: int | None = None
    quota_files: int | None = None
    used_bytes: int | None = None
    used_files: int | None = None
    retention_seconds: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Usage:
        """Build from ``GET /usage``'s answer; :class:`~updl.sdk.errors.ProtocolError` if malformed."""
        files, size = data.get("files"), data.get("bytes")
        if type(files) is not int or type(size) is not int or files < 0 or size < 0:
            raise ProtocolError(f"the server sent a malformed usage record: files {files!r}, bytes {size!r}")
        extra = {key: data.get(key) for key in _QUOTA_FIELDS}
        if any(value is not None and (type(value) is not int or value < 0) for value in extra.values()):
            raise ProtocolError(f"the server sent a malformed usage record: {extra!r}")
        return cls(str(data.get("prefix", "")), files, size, **extra)

    def to_json(self) -> dict[str, Any]:
        """The record ``updl du --json`` prints; the quota fields only when the user has a limit."""
        record: dict[str, Any] = {"prefix": self.prefix, "files": self.files, "bytes": self.bytes}
        if self.quota_bytes is not None or self.quota_files is not None or self.retention_seconds is not None:
            record.update({key: getattr(self, key) for key in _QUOTA_FIELDS})
        return record


_QUOTA_FIELDS = ("quota_bytes", "quota_files", "used_bytes", "used_files", "retention_seconds")
