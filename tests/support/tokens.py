"""Scoped tokens for tests, minted in-process on a live server's database (as ``token create`` does)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from tests.support.live_server import LiveServer
from updl_server.access import ALL_SCOPES
from updl_server.auth import issue_token
from updl_server.catalog import Catalog, tokens
from updl_server.config import ServerConfig


def _catalog(server: LiveServer) -> Catalog:
    return Catalog(ServerConfig(data_dir=server.data_dir, db_url=server.db_url()).database_url)


def mint(
    server: LiveServer,
    user: str,
    *,
    scopes: tuple[str, ...] = ALL_SCOPES,
    prefix: str | None = None,
    expires: datetime | None = None,
    label: str | None = None,
) -> str:
    """A new token for existing ``user`` with these limits; its text."""
    catalog = _catalog(server)
    try:
        user_id = catalog.user_id(user)
        assert user_id is not None, f"no user {user!r}"
        text, _ = issue_token(catalog, user_id, scopes=scopes, prefix=prefix, label=label, expires=expires)
    finally:
        catalog.close()
    return text


def set_expiry(server: LiveServer, token_text: str, expires: datetime) -> None:
    """Move a token's expiry (to the past: as if that much time went by, without waiting)."""
    catalog = _catalog(server)
    try:
        with catalog.engine.begin() as conn:
            conn.execute(update(tokens).where(tokens.c.id == token_id(token_text)).values(expires=expires))
    finally:
        catalog.close()


def token_id(token_text: str) -> str:
    """The id half of ``updl_<id>_<secret>``."""
    return token_text.split("_")[1]
