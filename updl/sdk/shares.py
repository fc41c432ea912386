"""Share links: a URL that downloads one file without a token (``/shares``, docs/api.md "Share links").

:class:`ShareLink` is a link as the server describes it; :class:`~updl.sdk.client.Client`
sends the requests (``share``, ``list_shares``, ``revoke_share``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from .errors import ProtocolError
from .models import format_time, parse_time
from .retention import seconds_of
from .transport import Transport, json_object

__all__ = ["MAX_SHARE_SECONDS", "ShareLink", "create_share", "list_shares", "revoke_share"]

MAX_SHARE_SECONDS = 30 * 24 * 3600  # the server's bound on a link's life


def _time(value: Any) -> datetime | None:
    return None if value is None else parse_time(str(value))


@dataclass(frozen=True)
class ShareLink:
    """One share link; ``url`` (holding the secret) only in the answer that created it."""

    id: str
    name: str
    url: str | None
    created: datetime
    expires: datetime
    max_downloads: int | None
    downloads: int
    revoked: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShareLink:
        """Build from the API's share object; :class:`~updl.sdk.errors.ProtocolError` if malformed."""
        try:
            limit = data.get("max_downloads")
            return cls(
                id=str(data["id"]),
                name=str(data["name"]),
                url=None if data.get("url") is None else str(data["url"]),
                created=parse_time(str(data["created"])),
                expires=parse_time(str(data["expires"])),
                max_downloads=None if limit is None else int(limit),
                downloads=int(data["downloads"]),
                revoked=_time(data.get("revoked")),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"the server sent a malformed share link ({exc})") from exc

    def to_json(self) -> dict[str, Any]:
        """The record ``--json`` prints."""
        return {
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "created": format_time(self.created),
            "expires": format_time(self.expires),
            "max_downloads": self.max_downloads,
            "downloads": self.downloads,
            "revoked": None if self.revoked is None else format_time(self.revoked),
        }


def create_share(
    transport: Transport, name: str, expires: int | timedelta, max_downloads: int | None = None
) -> ShareLink:
    """``POST /shares``: a new link to ``name`` (not retried: a lost answer would leave a link nobody has)."""
    seconds = seconds_of(expires)
    if seconds is None or seconds > MAX_SHARE_SECONDS:
        raise ValueError(f"a share link lasts 1 second to {MAX_SHARE_SECONDS // 86400} days")
    body = json.dumps({"name": name, "expires_in": seconds, "max_downloads": max_downloads})
    reply = transport.request("POST", "/shares", data=body, headers={"Content-Type": "application/json"})
    link = ShareLink.from_json(json_object(reply))
    if link.url is None:
        raise ProtocolError("the server's answer to a new share link has no url")
    return link


def list_shares(transport: Transport) -> list[ShareLink]:
    """``GET /shares``: the account's links, newest first (without their URLs)."""
    listed = json_object(transport.request("GET", "/shares")).get("shares")
    if not isinstance(listed, list) or not all(isinstance(item, dict) for item in listed):
        raise ProtocolError("the server's share list is not a list of objects")
    return [ShareLink.from_json(item) for item in listed]


def revoke_share(transport: Transport, share_id: str) -> None:
    """``DELETE /shares/{id}``: NotFoundError unless it is a live link of the account."""
    transport.request("DELETE", f"/shares/{quote(share_id, safe='')}").close()
