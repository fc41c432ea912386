"""Headers for browsers: a strict Content-Security-Policy on the page, stored files never
rendered (``Content-Disposition: attachment``, a sandboxing CSP), and CORS when configured.

Why stored files need this: the page keeps a token in ``sessionStorage``. If an uploaded
HTML or SVG file were ever rendered in the server's origin, its script could read that token.
So every answer that is not the page is marked ``sandbox`` (a unique, scriptless origin) and
file bodies are downloads, never documents; ``nosniff`` stops a browser from guessing a type.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .routes import PAGE_PREFIX

# The page's policy: scripts only from this server (no inline script, no eval). The one
# exception, 'wasm-unsafe-eval', lets the MD5 worker compile hash-wasm's WebAssembly; it does
# not allow JavaScript eval.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; "
    "connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'none'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# Everything else (JSON answers, file bodies): if a browser ever shows it, as an opaque origin
# that runs no script and loads nothing.
OTHER_POLICY = "sandbox; default-src 'none'; frame-ancestors 'none'"

# What a browser client on another origin may send and read (docs/api.md, "Browsers").
CORS_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Content-MD5",
    "Range",
    "If-Range",
    "If-Match",
    "If-None-Match",
    "Tus-Resumable",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Offset",
    "Upload-Checksum",
    "Upload-Md5",
    "Upload-Defer-Length",
    "Upload-Concat",
    "Updl-Expires-In",
)
CORS_EXPOSED_HEADERS = (
    "ETag",
    "Content-MD5",
    "Content-Length",
    "Content-Range",
    "Content-Disposition",
    "Accept-Ranges",
    "Last-Modified",
    "Location",
    "Retry-After",
    "WWW-Authenticate",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Expires",
    "Upload-Md5",
    "Updl-Expires",
)
CORS_MAX_AGE = 600  # seconds a browser may cache a preflight


def is_page(path: str) -> bool:
    """Whether ``path`` is the page or one of its files (served with the page's policy)."""
    return path == "/" or path.startswith(PAGE_PREFIX + "/")


def is_file_body(method: str, path: str, status: int) -> bool:
    """Whether an answer carries (or, for ``HEAD``, describes) a stored file's bytes."""
    return method in ("GET", "HEAD") and path.startswith("/files/") and status in (200, 206)


class SecurityHeaders:
    """ASGI middleware: ``nosniff`` and a CSP on every answer; ``attachment`` on file bodies."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, adding headers to its answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                page = is_page(path) and message["status"] < 400
                headers.setdefault("Content-Security-Policy", PAGE_POLICY if page else OTHER_POLICY)
                if is_file_body(method, path, message["status"]):
                    headers.setdefault("Content-Disposition", "attachment")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def cors_middleware(origins: Sequence[str]) -> list[Middleware]:
    """CORS for browser clients on ``origins`` (``*``: any), or nothing when there are none."""
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=CORS_MAX_AGE,
        )
    ]
