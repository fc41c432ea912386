"""Who the token is and what it may do: ``/whoami`` and the caller's own tokens (``/tokens``).

Value objects for the answers; :class:`~updl.sdk.client.Client` sends the
requests (``whoami``, ``create_token``, ``list_tokens``, ``revoke_token``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import ProtocolError
from .models import format_time, parse_time

__all__ = ["NewToken", "TokenInfo", "WhoAmI"]

SCOPES = ("read", "write", "delete")


def _time(value: Any) -> datetime | None:
    return None if value is None else parse_time(str(value))


def _scopes(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ValueError(f"scopes {value!r}")
    return tuple(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class TokenInfo:
    """One of the caller's tokens, as ``GET /tokens`` describes it (never its secret)."""

    id: str
    user: str
    scopes: tuple[str, ...]
    prefix: str | None
    label: str | None
    created: datetime
    expires: datetime | None
    last_used: datetime | None
    revoked: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenInfo:
        """Build from the API's token object; :class:`~updl.sdk.errors.ProtocolError` if malformed."""
        try:
            return cls(
                id=str(data["id"]),
                user=str(data["user"]),
                scopes=_scopes(data["scopes"]),
                prefix=_optional_str(data.get("prefix")),
                label=_optional_str(data.get("label")),
                created=parse_time(str(data["created"])),
                expires=_time(data.get("expires")),
                last_used=_time(data.get("last_used")),
                revoked=_time(data.get("revoked")),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"the server sent a malformed token record ({exc})") from exc

    def to_json(self) -> dict[str, Any]:
        """The record ``updl token list --json`` prints."""
        return {
            "id": self.id,
            "user": self.user,
            "scopes": list(self.scopes),
            "prefix": self.prefix,
            "label": self.label,
            "created": _iso(self.created),
            "expires": _iso(self.expires),
            "last_used": _iso(self.last_used),
            "revoked": _iso(self.revoked),
        }


@dataclass(frozen=True)
class NewToken:
    """A token just created: ``secret`` is the whole token text, shown this once."""

    secret: str
    info: TokenInfo

    def __repr__(self) -> str:  # never print a token by accident
        return f"NewToken(secret='updl_{self.info.id}_...', info={self.info!r})"


@dataclass(frozen=True)
class WhoAmI:
    """``GET /whoami``: the user, this token's limits, and the account's usage (and quota, if any)."""

    user: str
    token_id: str
    scopes: tuple[str, ...]
    prefix: str | None
    expires: datetime | None
    label: str | None
    files: int
    bytes: int
    quota_files: int | None = None
    quota_bytes: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WhoAmI:
        """Build from ``/whoami``'s answer; :class:`~updl.sdk.errors.ProtocolError` if malformed."""
        try:
            usage = data.get("usage") or {}
            files, size = usage.get("files", 0), usage.get("bytes", 0)
            if type(files) is not int or type(size) is not int:
                raise ValueError(f"usage {usage!r}")
            quota_files, quota_bytes = usage.get("quota_files"), usage.get("quota_bytes")
            return cls(
                user=str(data["user"]),
                token_id=str(data["token_id"]),
                scopes=_scopes(data["scopes"]),
                prefix=_optional_str(data.get("prefix")),
                expires=_time(data.get("expires")),
                label=_optional_str(data.get("label")),
                files=files,
                bytes=size,
                quota_files=quota_files if type(quota_files) is int else None,
                quota_bytes=quota_bytes if type(quota_bytes) is int else None,
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"the server sent a malformed whoami record ({exc})") from exc

    def to_json(self) -> dict[str, Any]:
        """The record ``updl whoami --json`` prints."""
        return {
            "user": self.user,
            "token_id": self.token_id,
            "scopes": list(self.scopes),
            "prefix": self.prefix,
            "expires": _iso(self.expires),
            "label": self.label,
            "usage": {
                "files": self.files,
                "bytes": self.bytes,
                "quota_files": self.quota_files,
                "quota_bytes": self.quota_bytes,
            },
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)
