"""Expiring files: how long a file is kept, and the sweep that deletes expired ones.

A file's expiry is ``files.expires`` (``None``: kept until deleted), set at
commit from the upload's ``Updl-Expires-In`` header (tus: the ``expires_in``
metadata), else the owner's retention (``updl-server quota USER --retention``),
else the server's ``--default-retention``. Readers filter expired rows out in
their queries (``catalog.live``), so a file is gone from listings, ``GET``,
``HEAD`` and ``/info`` the moment it expires; the sweep only reclaims space.

**The sweep is safe with several workers.** Each batch is claimed by one
``DELETE ... RETURNING`` of rows still expired: a row is deleted, and its
location returned, by exactly one process (on PostgreSQL a second worker's
delete waits for the first and then finds no row). Blobs are deleted after
the rows are gone, so a reader never finds a row without a blob; a crash in
between leaves orphan blobs, which the startup sweep of the store removes.
A replacement racing the sweep wins: it rewrites the row's ``expires`` under
its row lock, and the sweep's ``WHERE expires <= now`` no longer matches.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime

import anyio
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from . import metrics
from .catalog import Catalog, files, release_blobs
from .errors import bad_request
from .numbers import parse_count
from .storage import BlobStore

log = logging.getLogger("updl_server")

EXPIRES_HEADER = "updl-expires-in"
TUS_EXPIRES_KEY = "expires_in"
MAX_EXPIRES_IN = 100 * 366 * 24 * 3600  # a century: longer is "forever", and would overflow some dates
DEFAULT_SWEEP_INTERVAL = 600.0
SWEEP_BATCH = 500

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*([0-9]{1,12})\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> int:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"2w"``, ``"45s"`` or plain seconds, as seconds (at least 1).

    Raises ``ValueError`` for anything else, or for more than ``MAX_EXPIRES_IN``.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use seconds or a suffix: 90m, 12h, 30d, 2w)")
    seconds = int(match.group(1)) * _UNITS[match.group(2).lower() or "s"]
    if not 1 <= seconds <= MAX_EXPIRES_IN:
        raise ValueError(f"a duration must be 1 second to {MAX_EXPIRES_IN // 86400} days")
    return seconds


def checked_expires_in(raw: str | None, field: str) -> int | None:
    """A client's expiry in seconds (``None`` when absent); 400 unless 1 to ``MAX_EXPIRES_IN``."""
    if raw is None:
        return None
    value = parse_count(raw)
    if value is None or not 1 <= value <= MAX_EXPIRES_IN:
        raise bad_request(f"{field} must be a number of seconds from 1 to {MAX_EXPIRES_IN}", field=field)
    return value


def requested_expires_in(headers: Mapping[str, str]) -> int | None:
    """``Updl-Expires-In`` of a ``PUT`` or ``POST /upload``."""
    return checked_expires_in(headers.get(EXPIRES_HEADER), "Updl-Expires-In")


def claim_expired(catalog: Catalog, now: datetime, limit: int = SWEEP_BATCH) -> tuple[int, list[str]]:
    """Delete up to ``limit`` rows expired at ``now``: how many, and the blob locations they leave
    without a name (each handed to one caller; a blob another name still points at stays)."""
    batch = select(files.c.id).where(files.c.expires <= now).limit(limit).scalar_subquery()
    statement = files.delete().where(files.c.id.in_(batch), files.c.expires <= now).returning(files.c.location)
    with catalog.engine.execution_options(updl_write=True).begin() as conn:
        released = [str(location) for location in conn.execute(statement).scalars()]
        orphaned = release_blobs(conn, released)
    return len(released), orphaned


def sweep_expired(catalog: Catalog, store: BlobStore, now: datetime | None = None) -> int:
    """Delete every file expired at ``now`` (default: the catalog's clock), rows first; return how many."""
    moment = catalog.clock() if now is None else now
    removed = 0
    while True:
        claimed, orphaned = claim_expired(catalog, moment)
        for location in orphaned:
            store.delete(location)
        removed += claimed
        metrics.swept(claimed, kind="expired_file")
        if claimed < SWEEP_BATCH:
            return removed


async def sweep_periodically(catalog: Catalog, store: BlobStore, interval: float) -> None:
    """Run ``sweep_expired`` every ``interval`` seconds until cancelled; a failure is logged, not fatal."""
    while True:
        await anyio.sleep(interval)
        try:
            removed = await run_in_threadpool(sweep_expired, catalog, store)
        except Exception:
            log.exception("the sweep of expired files failed; it runs again in %.0f s", interval)
            continue
        if removed:
            log.info("swept %d expired file(s)", removed)
