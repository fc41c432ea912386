"""Limits and timeouts on connections, enforced in uvicorn's HTTP protocol.

uvicorn's httptools protocol lets a client that merely holds on keep what it
took: httptools joins the pieces of a header with no bound (100 MB headers
cost 100 MB), nothing ends a connection that never completes its request
head (the keep-alive timer runs only after a response, and any byte cancels
it), nothing ends a request whose body stops arriving (the request, its
temp file and a tus upload's lock stay held), and its ``limit_concurrency``
answers in plain text. ASGI middleware cannot help: it runs once the head is
complete. So :class:`GuardedProtocol` subclasses that protocol and adds,
per :class:`~updl_server.config.ConnectionLimits`:

- a request line and headers over ``max_header_size`` bytes → 431;
- a head not complete ``header_timeout`` seconds after the connection opened
  (on a kept-alive connection: after the request's first byte) → 408, or a
  silent close when the client has sent nothing;
- no byte of a request body for ``body_timeout`` seconds while the server
  waits for one → 408, and the app sees the client gone: the upload is
  rolled back and a tus upload's hold released, so its client can resume;
- over ``max_connections`` open connections → 503 to each request; a
  connection beyond twice that is closed at once, so a flood cannot use up
  file descriptors (``fit_descriptors`` makes room for them at startup).

Each of these answers is JSON and ends the connection. After a 431 or 408
the server half-closes and discards what still arrives for a moment (a
lingering close): closing a socket with unread bytes resets it, and the
reset can destroy the answer before the client reads it.

The subclass relies on the parent's internals (``cycle``, ``flow``,
``connections``, ``tasks``); tests/server/test_limits.py holds it to them
across uvicorn upgrades.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import resource
from dataclasses import replace
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from .config import ConnectionLimits

log = logging.getLogger("updl_server")

LINGER_SECONDS = 5.0
# Descriptors a served request may hold besides its socket (a temp or staged file, and a
# second reader of it when a tus completion hashes it), and those the process keeps for
# itself (database, logs, listening socket, thread pools' files).
FILES_PER_REQUEST = 2
RESERVED_DESCRIPTORS = 256


class _Phase(enum.Enum):
    HEAD = "head"  # waiting for (the rest of) a request line and headers
    BODY = "body"  # the head is in; its body, if any, is arriving
    LINGER = "linger"  # answered and half-closed: whatever arrives is discarded


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol under ``limits``; build one with :func:`guarded_protocol`."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As uvicorn's protocol (uvicorn creates one per connection)."""
        super().__init__(*args, **kwargs)
        self._served_app = self.app
        self._phase = _Phase.HEAD
        self._head_bytes = 0  # of the current request's head, so far
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._stalled: RequestResponseCycle | None = None  # whose body stalled, app running

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection; close it at once beyond twice ``max_connections``."""
        super().connection_made(transport)
        if len(self.connections) > 2 * self.limits.max_connections:
            log.warning(
                "%s: closed at once: %d connections open, max %d per process",
                self._peer(),
                len(self.connections) - 1,
                self.limits.max_connections,
            )
            self.transport.close()
            return
        self._arm(self.limits.header_timeout, self._head_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the timer, then as uvicorn."""
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser, counting head bytes against ``max_header_size``."""
        while data and self._phase is not _Phase.LINGER and not self.transport.is_closing():
            if self._phase is _Phase.BODY:
                self._last_read = self.loop.time()
                super().data_received(data)
                return
            if self._timer is None:  # the first byte of another request on this connection
                self._arm(self.limits.header_timeout, self._head_expired)
            # Never more than the limit into the parser: it buffers a header without bound.
            # (A pipelined request's first bytes, parsed along with the previous request,
            # go uncounted: a head can pass the limit by one read at most.)
            budget = self.limits.max_header_size - self._head_bytes
            piece, data = data[:budget], data[budget:]
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self._phase is _Phase.HEAD and self._head_bytes >= self.limits.max_header_size:
                log.info("%s: request head over %d bytes", self._peer(), self.limits.max_header_size)
                self._refuse_head(431, "request headers too large", max_header_size=self.limits.max_header_size)

    def on_headers_complete(self) -> None:
        """Start the body timer; pick the app, or the 503 when over ``max_connections``."""
        self._disarm()
        self._phase = _Phase.BODY
        self._head_bytes = 0
        self._last_read = self.loop.time()
        self.app = self._busy if self._over_capacity() else self._serve
        super().on_headers_complete()
        self._arm(self.limits.body_timeout, self._body_expired)

    def on_message_complete(self) -> None:
        """The body is in: no timer until the next request's first byte."""
        super().on_message_complete()
        self._disarm()
        self._phase = _Phase.HEAD
        self._head_bytes = 0

    # timers

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_expired(self) -> None:
        self._timer = None
        if self._phase is not _Phase.HEAD or self.transport.is_closing():
            return
        if self._head_bytes == 0:  # an idle new connection: nobody to answer
            self.transport.close()
            return
        log.info("%s: request head incomplete after %g s", self._peer(), self.limits.header_timeout)
        self._refuse_head(408, "request headers not received in time", timeout=self.limits.header_timeout)

    def _body_expired(self) -> None:
        self._timer = None
        if self._phase is not _Phase.BODY or self.transport.is_closing():
            return
        now = self.loop.time()
        cycle = self.cycle
        if self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue):
            self._last_read = now  # the server is not reading yet: the client is not late
        remaining = self._last_read + self.limits.body_timeout - now
        if remaining > 0:
            self._arm(remaining, self._body_expired)
            return
        log.info("%s: request body stalled for %g s", self._peer(), self.limits.body_timeout)
        self._phase = _Phase.LINGER
        if cycle is None or cycle.response_complete:
            self.transport.close()
            return
        # The app's next receive() says "disconnected": it rolls back and lets go, then
        # _serve answers, so a client that reads the 408 finds the upload released.
        self._stalled = cycle
        cycle.disconnected = True
        cycle.message_event.set()
        self._arm(LINGER_SECONDS, self.transport.close)  # should the app not let go soon

    # answers

    async def _serve(self, scope: Any, receive: Any, send: Any) -> None:
        """The app; then, for a request whose body stalled, the 408."""
        try:
            await self._served_app(scope, receive, send)
        finally:
            stalled, self._stalled = self._stalled, None
            if stalled is not None and stalled.scope is scope:
                if stalled.response_started:
                    self.transport.close()
                else:
                    self._answer(
                        408,
                        {
                            "error": "request body stalled: no bytes received in time",
                            "timeout": self.limits.body_timeout,
                        },
                    )
            elif stalled is not None:
                self._stalled = stalled  # another (pipelined) request's

    def send_400_response(self, msg: str) -> None:
        """What uvicorn answers a request the parser refuses (a bad ``Content-Length``, a
        raw non-ASCII byte in the URL), as JSON like every other error."""
        log.info("%s: unparseable request: %s", self._peer(), msg)
        self._refuse_head(400, "malformed HTTP request", detail=msg)

    def _refuse_head(self, status: int, message: str, **extra: Any) -> None:
        """Answer a request whose head is refused, unless a response is under way."""
        self._disarm()
        self._phase = _Phase.LINGER
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            self.transport.close()  # nothing may be written into the middle of a response
            return
        self._answer(status, {"error": message, **extra})

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        """Send a JSON answer, half-close, discard what still arrives, close after a moment."""
        if self.transport.is_closing():
            return
        self.transport.write(self._json_response(status, document))
        if self.transport.can_write_eof():  # not over TLS
            self.transport.write_eof()
        self._arm(LINGER_SECONDS, self.transport.close)

    def _json_response(self, status: int, document: dict[str, Any]) -> bytes:
        body = json.dumps(document).encode()
        lines = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            lines += [name, b": ", value, b"\r\n"]
        lines += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
        return b"".join(lines)

    def _over_capacity(self) -> bool:
        cap = self.limits.max_connections
        return len(self.connections) > cap or len(self.tasks) >= cap

    async def _busy(self, scope: Any, receive: Any, send: Any) -> None:
        """The ASGI app for a request over ``max_connections``: 503, and close."""
        log.warning("%s: 503: over %d connections", self._peer(), self.limits.max_connections)
        body = json.dumps(
            {
                "error": "server busy: too many connections; try again shortly",
                "max_connections": self.limits.max_connections,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(body)),
                    (b"retry-after", b"1"),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "client"


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedProtocol]:
    """A :class:`GuardedProtocol` class enforcing ``limits``, for ``uvicorn.Config(http=...)``."""
    return type("GuardedProtocol", (GuardedProtocol,), {"limits": limits})


def descriptor_budget(max_connections: int, soft: int, hard: int) -> tuple[int, int]:
    """The open-file soft limit to set and the connections that then fit, per process.

    Each served connection may hold its socket and ``FILES_PER_REQUEST`` files,
    and as many again may be open only to be refused; ``RESERVED_DESCRIPTORS``
    stay for the process. The soft limit is raised as far as needed and the
    hard limit allows; when that is not enough, fewer connections are allowed.
    """
    needed = max_connections * (2 + FILES_PER_REQUEST) + RESERVED_DESCRIPTORS
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft, max_connections
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    target = max(target, soft)
    fits = (target - RESERVED_DESCRIPTORS) // (2 + FILES_PER_REQUEST)
    return target, max(1, min(max_connections, fits))


def fit_descriptors(limits: ConnectionLimits) -> ConnectionLimits:
    """Raise this process's open-file limit for ``limits`` (inherited by forked workers);
    return ``limits`` with ``max_connections`` lowered, and a warning, if it cannot fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target, fits = descriptor_budget(limits.max_connections, soft, hard)
    if target != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            target, fits = descriptor_budget(limits.max_connections, soft, soft)
    if fits == limits.max_connections:
        return limits
    log.warning(
        "the open-file limit (%d) fits %d connections per process, not %d; raise it "
        "(ulimit -n, systemd LimitNOFILE=) or lower --max-connections",
        target,
        fits,
        limits.max_connections,
    )
    return replace(limits, max_connections=fits)
