"""Bearer tokens: ``updl_<id>_<secret>``.

``<id>`` (16 hex digits) is stored in clear as the lookup key; only the
SHA-256 of ``<secret>`` is stored, so a leaked database yields no usable
token. Verification compares digests in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from starlette.concurrency import run_in_threadpool

from .access import Grant
from .accounts import USE_RESOLUTION, Accounts
from .catalog import Catalog, utcnow
from .errors import HTTPError

PREFIX = "updl"
_TOKEN = re.compile(r"^updl_([0-9a-f]{16})_([A-Za-z0-9_-]{16,128})$")
LOGIN_RESOLUTION = USE_RESOLUTION


@dataclass(frozen=True)
class NewToken:
    """A freshly minted token: ``text`` is shown to the user once, the rest goes to the catalog."""

    token_id: str
    secret_hash: str
    text: str


def hash_secret(secret: str) -> str:
    """Hex SHA-256 of a token secret, as stored in the catalog."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def mint_token() -> NewToken:
    """A new random token (64-bit id, 256-bit secret)."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewToken(token_id, hash_secret(secret), f"{PREFIX}_{token_id}_{secret}")


def issue_token(
    catalog: Catalog,
    user_id: int,
    *,
    scopes: tuple[str, ...] | None = None,
    prefix: str | None = None,
    label: str | None = None,
    expires: datetime | None = None,
) -> tuple[str, str]:
    """Mint a token with these limits, store its hash; return its text (shown once) and its id."""
    token = mint_token()
    Accounts(catalog).add_token(
        user_id,
        token.token_id,
        token.secret_hash,
        scopes=scopes,
        prefix=prefix,
        label=label,
        expires=expires,
        now=utcnow(),
    )
    return token.text, token.token_id


def split_token(text: str) -> tuple[str, str] | None:
    """``(token_id, secret)`` of a well-formed token, or ``None``."""
    match = _TOKEN.match(text)
    return (match.group(1), match.group(2)) if match else None


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Whether ``secret`` hashes to ``stored_hash``, compared in constant time."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def unauthorized(message: str, **extra: str) -> HTTPError:
    """The contract's 401, with the challenge header."""
    return HTTPError(401, message, headers={"WWW-Authenticate": "Bearer"}, **extra)


async def authenticate(catalog: Catalog, authorization: str | None) -> Grant:
    """The token behind an ``Authorization: Bearer`` header and what it may do; raises 401 otherwise.

    Read from the database on every request (no cache), so a revoked or expired
    token, or a disabled user, is refused at once by every worker.
    """
    if not authorization:
        raise unauthorized(
            "missing token: send 'Authorization: Bearer <token>' (get one with 'updl-server add-user NAME')"
        )
    scheme, _, text = authorization.partition(" ")
    parts = split_token(text.strip()) if scheme.lower() == "bearer" else None
    if parts is None:
        raise unauthorized("malformed token: expected 'Authorization: Bearer updl_...'")
    token_id, secret = parts
    accounts = Accounts(catalog)
    record = await run_in_threadpool(accounts.token, token_id)
    if record is None or not secret_matches(secret, record.secret_hash):
        raise unauthorized("unknown token")
    now = utcnow()
    if record.revoked is not None:
        raise unauthorized("token revoked: ask for a new one", reason="revoked")
    if record.expires is not None and record.expires <= now:
        raise unauthorized("token expired: ask for a new one", reason="expired")
    if record.user_disabled is not None:
        raise unauthorized(f"user {record.user!r} is disabled: ask the server's operator", reason="disabled")
    if last_login_due(record.last_used, now):
        await run_in_threadpool(accounts.record_use, record.id, record.user_id, now)
    return Grant(record.user_id, record.user, record.id, record.scopes, record.prefix, record.expires, record.label)


def last_login_due(last_login: datetime | None, now: datetime) -> bool:
    """Whether a login at ``now`` should be written, given the stored ``last_login``."""
    return last_login is None or now - last_login >= LOGIN_RESOLUTION
