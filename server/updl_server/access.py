"""What a token may do: scopes, an optional name prefix, an optional expiry.

A request is authenticated (``auth.py``: 401 when the token is unknown,
malformed, revoked, expired, or its user disabled) and then authorised here:
the route names the scope it needs and, where it acts on names, the name or
prefix, and :class:`Grant` refuses with 403 ``{"error", "missing_scope"}``
(or ``"prefix"``) anything outside the token's scope. The decisions, kept in
one place so docs/api.md can state them:

* ``read``: ``GET``/``HEAD /files/{name}``, ``/info/{name}``, ``/files`` (listing), ``/usage``.
* ``write``: ``POST /upload``, ``PUT /files/{name}`` (a replace too: it needs
  ``write``, not ``delete``), every tus route (create, ``HEAD``, ``PATCH``, and
  termination: abandoning an unfinished upload deletes no stored file).
* ``delete``: ``DELETE /files/{name}``.
* A prefix token acts only on names starting with its prefix; a listing or
  usage whose ``prefix`` does not start with it is refused (403), not
  filtered, so a page never silently differs from what was asked for.
* ``/whoami`` and the token API need only a valid token; a token can mint only
  tokens within its own scopes, prefix and expiry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .errors import HTTPError
from .names import MAX_NAME_BYTES, name_problem

READ = "read"
WRITE = "write"
DELETE = "delete"
ALL_SCOPES = (READ, WRITE, DELETE)  # the canonical order, also the stored form's
FULL = ",".join(ALL_SCOPES)
MAX_LABEL = 128
MAX_EXPIRY = timedelta(days=3650)
_DURATION = re.compile(r"^([1-9][0-9]{0,5})([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_scopes(text: str) -> tuple[str, ...]:
    """``"read,write"`` as canonical scopes; ``ValueError`` for an empty or unknown one."""
    wanted = {part.strip().lower() for part in text.split(",") if part.strip()}
    unknown = wanted - set(ALL_SCOPES)
    if unknown or not wanted:
        raise ValueError(f"scopes must be one or more of {', '.join(ALL_SCOPES)}, comma-separated; got {text!r}")
    return tuple(s for s in ALL_SCOPES if s in wanted)


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` as a duration (at most ten years); ``ValueError`` otherwise."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"a duration is a number and a unit s, m, h, d or w (e.g. 30d); got {text!r}")
    duration = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if duration > MAX_EXPIRY:
        raise ValueError(f"a token may last at most {MAX_EXPIRY.days} days")
    return duration


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot limit a token, or ``None``: it must begin some valid name (``ci/`` does)."""
    if not prefix:
        return "empty"
    problem = name_problem(prefix + "x")  # the shortest name that starts with it
    return None if problem is None else problem.replace(f"{MAX_NAME_BYTES} bytes", f"{MAX_NAME_BYTES - 1} bytes")


def forbidden(message: str, **extra: Any) -> HTTPError:
    """The 403: a valid token asking for more than its scope (never a 401: the token is fine)."""
    return HTTPError(403, message, **extra)


@dataclass(frozen=True)
class Grant:
    """An authenticated token: whose it is and what it may do."""

    user_id: int
    user: str
    token_id: str
    scopes: tuple[str, ...]
    prefix: str | None
    expires: datetime | None
    label: str | None = None

    def require(self, scope: str, name: str | None = None) -> None:
        """403 unless this token has ``scope`` and, for ``name``, the name is within its prefix."""
        if scope not in self.scopes:
            raise forbidden(
                f"this token may not {scope}: its scopes are {','.join(self.scopes)}; "
                f"create one with the {scope} scope ('updl token create --scopes ...')",
                missing_scope=scope,
                scopes=list(self.scopes),
            )
        if name is not None and self.prefix is not None and not name.startswith(self.prefix):
            raise forbidden(
                f"this token is limited to names starting with {self.prefix!r}",
                missing_scope=scope,
                prefix=self.prefix,
                name=name,
            )

    def require_prefix(self, scope: str, prefix: str) -> None:
        """403 unless ``scope`` and a listing of ``prefix`` stays inside this token's prefix."""
        self.require(scope)
        if self.prefix is not None and not prefix.startswith(self.prefix):
            raise forbidden(
                f"this token is limited to names starting with {self.prefix!r}: list with prefix={self.prefix!r} "
                "or below",
                missing_scope=scope,
                prefix=self.prefix,
            )

    def covers(self, scopes: tuple[str, ...], prefix: str | None, expires: datetime | None) -> bool:
        """Whether a token with these limits can do nothing this one cannot."""
        if not set(scopes) <= set(self.scopes):
            return False
        if self.prefix is not None and (prefix is None or not prefix.startswith(self.prefix)):
            return False
        return self.expires is None or (expires is not None and expires <= self.expires)
