"""Per-user limits: bytes and files stored (quotas) and the default retention.

Set by ``updl-server quota USER --bytes 10G --files 1000 --retention 14d``; a
user without a row (or a limit left unset) is unlimited. Usage counts live
(unexpired) committed files only: an unfinished tus upload counts at
completion.

**Two checks.** Where the size is known before the body is read, the upload
is refused at once with 507 and nothing is read or stored: ``PUT`` with a
``Content-Length``, and tus creation (``Upload-Length``). A multipart ``POST
/upload`` declares only its body's length, framing included: the file is at
least ``Content-Length`` less ``MULTIPART_OVERHEAD``, and that lower bound is
checked before reading when it alone exceeds the quota, and against the usage
when the ``name`` part arrives before the file part (updl's SDK sends it
first). Every upload is checked again at commit (``admit``), inside the
transaction that records it: there the owner's ``user_limits`` row is locked
(``FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` locks the database), so the
commits of one user with a quota queue and concurrent uploads cannot
overshoot at all. A refused commit stores nothing: the verified blob is
deleted (the tus staging was promoted to it). An upload whose size was not
known in advance (chunked ``PUT``, a multipart name after its file) is
received whole before that check refuses it.

Replacing a file counts the difference: the live version it replaces is
subtracted, and a replacement is not a new file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, ForeignKey, Integer, Table, func, select
from starlette.concurrency import run_in_threadpool

from .catalog import Catalog, files, live, metadata
from .errors import HTTPError

user_limits = Table(
    "user_limits",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("max_bytes", BigInteger),  # None: unlimited
    Column("max_files", BigInteger),
    Column("retention_seconds", BigInteger),  # None: the server's --default-retention
)

UNSET: Any = object()  # "leave as it is", for set_limits


@dataclass(frozen=True)
class Limits:
    """One user's limits; ``None`` means no limit (or, for retention, the server's default)."""

    max_bytes: int | None = None
    max_files: int | None = None
    retention_seconds: int | None = None

    @property
    def any_quota(self) -> bool:
        """Whether uploads need checking at all."""
        return self.max_bytes is not None or self.max_files is not None

    def fields(self, used_files: int, used_bytes: int) -> dict[str, Any]:
        """The quota fields of ``GET /usage`` and of a 507."""
        return {
            "quota_bytes": self.max_bytes,
            "used_bytes": used_bytes,
            "quota_files": self.max_files,
            "used_files": used_files,
        }


def limits_of(catalog: Catalog, user_id: int, conn: Connection | None = None) -> Limits:
    """The user's limits (all ``None`` without a row)."""
    query = select(user_limits).where(user_limits.c.user_id == user_id)
    if conn is None:
        with catalog.engine.connect() as own:
            row = own.execute(query).first()
    else:
        row = conn.execute(query.with_for_update()).first()
    if row is None:
        return Limits()
    return Limits(row.max_bytes, row.max_files, row.retention_seconds)


def set_limits(
    catalog: Catalog, user_id: int, *, max_bytes: Any = UNSET, max_files: Any = UNSET, retention_seconds: Any = UNSET
) -> Limits:
    """Change the given limits (``None`` removes one; ``UNSET`` keeps it) and return them all."""
    changes = {
        key: value
        for key, value in (
            ("max_bytes", max_bytes),
            ("max_files", max_files),
            ("retention_seconds", retention_seconds),
        )
        if value is not UNSET
    }
    with catalog.engine.execution_options(updl_write=True).begin() as conn:
        exists = conn.execute(select(user_limits.c.user_id).where(user_limits.c.user_id == user_id)).first()
        if exists is None:
            conn.execute(user_limits.insert().values(user_id=user_id, **changes))
        elif changes:
            conn.execute(user_limits.update().where(user_limits.c.user_id == user_id).values(**changes))
    return limits_of(catalog, user_id)


def used(catalog: Catalog, conn: Connection, user_id: int) -> tuple[int, int]:
    """How many live files the user has and their total size."""
    query = select(func.count(), func.coalesce(func.sum(files.c.size), 0)).where(
        files.c.owner_id == user_id, live(catalog.clock())
    )
    count, total = conn.execute(query).one()
    return int(count), int(total)


def quota_exceeded(limits: Limits, used_files: int, used_bytes: int, size: int) -> HTTPError:
    """The 507 answer for an upload of ``size`` bytes that the quota has no room for."""
    return HTTPError(
        507,
        "quota exceeded: the upload would take you past your storage quota; delete files "
        "(updl rm) or ask the operator for more (updl-server quota)",
        size=size,
        **limits.fields(used_files, used_bytes),
    )


def refuse_if_over(limits: Limits, used_files: int, used_bytes: int, size: int, replaced: int | None) -> None:
    """507 when storing ``size`` bytes (replacing a live file of ``replaced`` bytes, if any) passes a limit."""
    new_bytes = used_bytes - (replaced or 0) + size
    new_files = used_files + (0 if replaced is not None else 1)
    if (limits.max_bytes is not None and new_bytes > limits.max_bytes) or (
        limits.max_files is not None and new_files > limits.max_files
    ):
        raise quota_exceeded(limits, used_files, used_bytes, size)


@dataclass(frozen=True)
class Admission:
    """What an upload is committed with: its expiry and the commit-time quota check."""

    expires_in: int | None = None
    admit: Callable[[Connection, int, int | None], None] | None = None


def _early(limits: Limits, catalog: Catalog, conn: Connection, user_id: int, name: str | None, size: int) -> None:
    """507 when an upload of at least ``size`` bytes under ``name`` (``None``: not known yet) cannot fit."""
    if not limits.any_quota:
        return
    used_files, used_bytes = used(catalog, conn, user_id)
    if name is None:
        # The name is unknown: only a size that no replacement could make fit is refused.
        if limits.max_bytes is not None and size > limits.max_bytes:
            raise quota_exceeded(limits, used_files, used_bytes, size)
        return
    query = select(files.c.size).where(files.c.owner_id == user_id, files.c.name == name, live(catalog.clock()))
    replaced = conn.execute(query).scalar()
    refuse_if_over(limits, used_files, used_bytes, size, None if replaced is None else int(replaced))


def _prepare(
    catalog: Catalog,
    user_id: int,
    default_retention: int | None,
    expires_in: int | None,
    name: str | None,
    size: int | None,
) -> Admission:
    with catalog.engine.connect() as conn:
        limits = limits_of(catalog, user_id)
        if size is not None:
            _early(limits, catalog, conn, user_id, name, size)
    if expires_in is None:
        expires_in = limits.retention_seconds if limits.retention_seconds is not None else default_retention

    def admit(conn: Connection, size: int, replaced: int | None) -> None:
        locked = limits_of(catalog, user_id, conn)  # locks the row: this user's commits queue
        if locked.any_quota:
            used_files, used_bytes = used(catalog, conn, user_id)
            refuse_if_over(locked, used_files, used_bytes, size, replaced)

    return Admission(expires_in, admit)


async def prepare(
    catalog: Catalog,
    user_id: int,
    default_retention: int | None,
    expires_in: int | None,
    name: str | None = None,
    size: int | None = None,
) -> Admission:
    """The admission of one upload, refusing it (507) now if at least ``size`` bytes under ``name`` cannot fit.

    ``expires_in`` is the client's (``None``: the user's retention, else ``default_retention``).
    """
    return await run_in_threadpool(_prepare, catalog, user_id, default_retention, expires_in, name, size)


async def refuse_early(catalog: Catalog, user_id: int, name: str | None, size: int | None) -> None:
    """507 before more of the body is read when an upload of at least ``size`` bytes cannot fit."""
    if size is None:
        return

    def check() -> None:
        with catalog.engine.connect() as conn:
            _early(limits_of(catalog, user_id), catalog, conn, user_id, name, size)

    await run_in_threadpool(check)
