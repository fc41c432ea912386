"""The audit log: one JSON line per state change (docs/operations.md, "Audit log").

``audit.record("upload.committed", name=..., size=..., md5=...)`` writes
``{"time": ..., "event": ..., "user_id": ..., "token_id": ..., "client": ..., ...}``
on one line. Who and from where come from the request being served: the
middleware :class:`AuditContext` notes the client's address and
``auth.authenticate`` the user and token id (:func:`identify`), in a context
variable that follows the request into worker threads. Off unless
``--audit-log FILE`` (or ``-``, standard error) is given; then every call costs
one ``write``.

**One line, one write.** The file is opened with ``O_APPEND`` and each line is
written with a single ``os.write``, so lines from several worker processes (and
the admin commands) never interleave: the kernel appends each write whole.

**Never a secret.** A token's id is its public half (the lookup key);
``record`` refuses fields whose name says they hold a secret, so a careless
caller fails in tests rather than leaking into a log.
"""

from __future__ import annotations

import json
import logging
import os
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("updl_server")

STDERR = "-"
SECRET_FIELDS = frozenset({"token", "secret", "secret_hash", "hash", "password", "authorization", "signature"})
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)

# The request being served: client address, then user and token once authenticated.
_who: ContextVar[dict[str, Any] | None] = ContextVar("updl_audit_who", default=None)
_fd: int | None = None


def configure(destination: str | None) -> None:
    """Write to file ``destination``, to standard error for ``-``, or nowhere for ``None``.

    Raises ``OSError`` when the file cannot be opened (the CLI checks before listening).
    """
    global _fd
    if _fd is not None and _fd != 2:
        os.close(_fd)
    if destination is None:
        _fd = None
    elif destination == STDERR:
        _fd = 2
    else:
        _fd = os.open(destination, _FLAGS, 0o600)


def enabled() -> bool:
    """Whether this process writes an audit log."""
    return _fd is not None


def identify(user_id: int, token_id: str) -> None:
    """Note who the current request is (``auth.authenticate`` calls it)."""
    who = _who.get()
    if who is not None:
        who.update(user_id=user_id, token_id=token_id)


def record(event: str, **fields: Any) -> None:
    """Write one line: the time, ``event``, who (the current request's user, token, client), ``fields``.

    ``fields`` override who (an admin command passes its own ``user_id``). A field
    named like a secret is a ``ValueError``. A failed write is logged, not raised:
    the state change it describes has already happened.
    """
    leaked = SECRET_FIELDS.intersection(fields)
    if leaked:
        raise ValueError(f"audit fields must not hold secrets: {sorted(leaked)}")
    if _fd is None:
        return
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    line = {"time": now, "event": event, **(_who.get() or {}), **fields}
    data = (json.dumps(line, default=str, separators=(",", ":")) + "\n").encode("ascii")
    try:
        os.write(_fd, data)
    except OSError as exc:
        log.error("could not write the audit log (%s): %s", event, exc)


class AuditContext:
    """ASGI middleware: each HTTP request starts with its client's address as the audit's who."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (anything else passes through)."""
        if scope["type"] != "http" or _fd is None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        reset = _who.set({"client": client[0] if client else None})
        try:
            await self.app(scope, receive, send)
        finally:
            _who.reset(reset)
