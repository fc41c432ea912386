"""Formats shared by several modules, defined once: ids the server makes, MD5s, HTTP dates.

Nothing here imports Starlette or a database driver, so storage may use it too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime

# A resumable upload's id: 32 lower-case hex digits (``uuid4().hex``), in URLs and staging names.
UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
# An MD5 as clients send it: 32 hex digits, either case (compared lower-cased).
MD5_HEX = re.compile(r"^[0-9a-fA-F]{32}$")


def http_date(moment: datetime) -> str:
    """A catalog time (naive UTC) as an RFC 9110 date (``Last-Modified``, ``Upload-Expires``)."""
    return format_datetime(moment.replace(tzinfo=UTC), usegmt=True)


def isoformat(moment: datetime | None) -> str | None:
    """A catalog time as the contract's ISO 8601 UTC with ``Z``."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
