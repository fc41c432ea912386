"""File names as users choose them, and why a name is refused.

Names never become filesystem paths (blobs live under server-made ids), but
the rules still refuse anything that would be ambiguous or dangerous if a
client mirrored names onto a disk.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import HTTPError

MAX_NAME_BYTES = 1024
USER_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
MAX_USER_NAME = 64


def name_problem(name: str) -> str | None:
    """Why ``name`` is not an acceptable file name, or ``None`` when it is."""
    if not name:
        return "empty"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"longer than {MAX_NAME_BYTES} bytes"
    if name.startswith("/"):
        return "starts with '/'"
    if "\\" in name:
        return "contains a backslash"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "contains a control character"
    for segment in name.split("/"):
        if segment == "":
            return "has an empty segment"
        if segment in (".", ".."):
            return f"has a {segment!r} segment"
    return None


def validate_name(name: str) -> str:
    """Return ``name`` unchanged if acceptable; otherwise raise the contract's 400."""
    problem = name_problem(name)
    if problem is not None:
        raise HTTPError(400, f"invalid name: {problem}", name=name)
    return name


def is_utf8_escaped(raw: bytes) -> bool:
    """Whether percent-decoding ``raw`` (a URL's path or query) gives valid UTF-8."""
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class Utf8Urls:
    """ASGI middleware: 400 for a URL whose percent-escapes are not UTF-8, before any route.

    The server decodes the path and the query with U+FFFD for each invalid
    byte, so ``/files/%ff`` and ``/files/%fe`` would name the same file (and
    ``prefix=%ff`` match it); refusing here covers every route that takes a
    name, a prefix or a cursor, the same way ``POST /upload`` refuses a name part.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse one request, or pass it on."""
        if scope["type"] == "http":
            # Without raw_path (not uvicorn) only the decoded path exists: nothing to check.
            raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
            for part, raw in (("path", raw_path), ("query", scope.get("query_string", b""))):
                if not is_utf8_escaped(raw):
                    body: dict[str, Any] = {
                        "error": f"invalid URL: the {part}'s percent-escapes are not UTF-8 text",
                        part: raw.decode("latin-1"),
                    }
                    await JSONResponse(body, status_code=400)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def user_name_problem(name: str) -> str | None:
    """Why ``name`` is not an acceptable user name (1-64 of ``[A-Za-z0-9._-]``), or ``None``."""
    if not 1 <= len(name) <= MAX_USER_NAME:
        return f"must be 1 to {MAX_USER_NAME} characters"
    if not set(name) <= USER_NAME_CHARS:
        return "may contain only letters, digits, '.', '_' and '-'"
    return None
