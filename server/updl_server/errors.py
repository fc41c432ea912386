"""The one exception routes raise to answer with an error; rendered as JSON by the app."""

from __future__ import annotations

import errno
from typing import Any

# What "no space left" looks like from the filesystem, SQLite (SQLITE_FULL) and PostgreSQL
# (SQLSTATE disk_full), so that errors.py needs no database driver.
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"


class HTTPError(Exception):
    """An error answer: ``status`` with body ``{"error": message, **extra}``.

    ``headers`` are added to the response (``WWW-Authenticate``, ``Content-Range``, ...).
    """

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        """An error answer; ``extra`` fields join ``error`` in the JSON body."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON document sent to the client."""
        return {"error": self.message, **self.extra}


def bad_request(message: str, **extra: Any) -> HTTPError:
    """A 400 answer."""
    return HTTPError(400, message, **extra)


def too_large(max_size: int) -> HTTPError:
    """The contract's 413 answer."""
    return HTTPError(413, "file exceeds the server's size limit", max_size=max_size)


def checksum_failed(expected: str, actual: str, algorithm: str = "md5") -> HTTPError:
    """The contract's 409 answer: the bytes received do not have the digest the client claimed
    (``algorithm``: ``md5`` or ``sha256``, named in the body)."""
    return HTTPError(
        409, "checksum failed - please attempt reuploading", expected=expected, actual=actual, algorithm=algorithm
    )


def no_such_file(name: str) -> HTTPError:
    """The contract's 404 for a missing file (or another user's: the two look the same)."""
    return HTTPError(404, "no such file", name=name)


def insufficient_storage(headers: dict[str, str] | None = None) -> HTTPError:
    """The 507 answer: the server has no room for the write (clients do not retry it)."""
    return HTTPError(
        507,
        "insufficient storage: the server's disk is full; free space on the server, then try again",
        headers=headers,
    )


def out_of_space(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it wraps, says the disk (or a quota) is full.

    Covers ENOSPC/EDQUOT from the filesystem and "database or disk is full"
    from SQLite or PostgreSQL (SQLAlchemy keeps the driver's error in ``orig``).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            return True
        if getattr(current, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if _PG_DISK_FULL in (getattr(current, "sqlstate", None), getattr(current, "pgcode", None)):
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False
