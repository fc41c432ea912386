"""The one exception routes raise to answer with an error; rendered as JSON by the app."""

from __future__ import annotations

from typing import Any


class HTTPError(Exception):
    """An error answer: ``status`` with body ``{"error": message, **extra}``.

    ``headers`` are added to the response (``WWW-Authenticate``, ``Content-Range``, ...).
    """

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
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


def checksum_failed(expected: str, actual: str) -> HTTPError:
    """The contract's 409 answer: the bytes received do not have the MD5 the client claimed."""
    return HTTPError(409, "checksum failed - please attempt reuploading",
                     expected=expected, actual=actual)


def no_such_file(name: str) -> HTTPError:
    """The contract's 404 for a missing file (or another user's: the two look the same)."""
    return HTTPError(404, "no such file", name=name)
