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
from datetime import datetime, timedelta

from starlette.concurrency import run_in_threadpool

from . import audit
from .catalog import Catalog, utcnow
from .errors import HTTPError

PREFIX = "updl"
_TOKEN = re.compile(r"^updl_([0-9a-f]{16})_([A-Za-z0-9_-]{16,128})$")
# Writing last_login on every request would turn every read into a DB write.
LOGIN_RESOLUTION = timedelta(minutes=1)


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


def split_token(text: str) -> tuple[str, str] | None:
    """``(token_id, secret)`` of a well-formed token, or ``None``."""
    match = _TOKEN.match(text)
    return (match.group(1), match.group(2)) if match else None


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Whether ``secret`` hashes to ``stored_hash``, compared in constant time."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def unauthorized(message: str) -> HTTPError:
    """The contract's 401, with the challenge header."""
    return HTTPError(401, message, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(catalog: Catalog, authorization: str | None) -> int:
    """The user id behind an ``Authorization: Bearer`` header; raises 401 otherwise."""
    if not authorization:
        raise unauthorized(
            "missing token: send 'Authorization: Bearer <token>' (get one with 'updl-server add-user NAME')"
        )
    scheme, _, text = authorization.partition(" ")
    parts = split_token(text.strip()) if scheme.lower() == "bearer" else None
    if parts is None:
        raise unauthorized("malformed token: expected 'Authorization: Bearer updl_...'")
    token_id, secret = parts
    credential = await run_in_threadpool(catalog.credential, token_id)
    if credential is None or not secret_matches(secret, credential.secret_hash):
        raise unauthorized("unknown token")
    audit.identify(credential.user_id, token_id)
    now = utcnow()
    if last_login_due(credential.last_login, now):
        await run_in_threadpool(catalog.record_login, credential.user_id, now)
    return credential.user_id


def last_login_due(last_login: datetime | None, now: datetime) -> bool:
    """Whether a login at ``now`` should be written, given the stored ``last_login``."""
    return last_login is None or now - last_login >= LOGIN_RESOLUTION
