"""The metadata catalog: users, tokens and files, over SQLAlchemy Core.

All SQL lives here. Methods are synchronous (routes call them through a
thread pool). With SQLite the catalog uses WAL (readers never wait for the
writer), a busy timeout (writers queue instead of failing with "database is
locked") and ``BEGIN IMMEDIATE`` for write transactions, so a transaction
that reads before it writes cannot deadlock against another writer.

Two writes are bookkeeping done while *reading* (``last_accessed``,
``last_login``): they are best effort, so a read never fails because the
database cannot write (a full disk, a lock held past the busy timeout).
Deletes are how an operator gets out of a full disk, so they may spend the
SQLite database's ``SpaceReserve`` (see ``reserve``).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict, TypeVar, Unpack

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    case,
    create_engine,
    event,
    exists,
    func,
    inspect,
    or_,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.schema import CreateColumn
from sqlalchemy.sql.elements import ColumnElement

from .errors import out_of_space
from .reserve import SpaceReserve

log = logging.getLogger("updl_server")
T = TypeVar("T")

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created", DateTime, nullable=False),
    Column("last_login", DateTime),
    Column("disabled", DateTime),  # when an operator disabled the user; its tokens get 401 (accounts.py)
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(16), primary_key=True),  # the clear lookup half of the token
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("hash", String(64), nullable=False),  # sha256 hex of the secret half
    Column("created", DateTime, nullable=False),
    # Scoped tokens (accounts.py, access.py); a token made before scopes existed keeps full power.
    Column("scopes", String(32), nullable=False, server_default="read,write,delete"),
    Column("name_prefix", String(1024)),  # only names starting with this (None: any)
    Column("label", String(128)),
    Column("expires", DateTime),
    Column("last_used", DateTime),
    Column("revoked", DateTime),
)

files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(1024), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("md5", String(32), nullable=False),
    Column("location", String(255), nullable=False, index=True),  # blob store key
    Column("created", DateTime, nullable=False),
    Column("last_accessed", DateTime),
    Column("expires", DateTime, index=True),  # None: kept until deleted; past: gone (see retention.py)
    Column("mode", Integer),  # permission bits the client recorded (attributes.py), if it did
    Column("mtime", DateTime),  # modification time the client recorded, if it did
    Column("sha256", String(64)),  # hex; NULL for files stored before the server computed it
    UniqueConstraint("owner_id", "name"),
)

# Stored contents, reference counted: several names of one owner may point at one blob
# (upload by content, see ``link_file``). A blob is deleted with its last name. A file whose
# location has no row here predates the table and is its blob's only name.
blobs = Table(
    "blobs",
    metadata,
    Column("location", String(255), primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("md5", String(32), nullable=False),
    Column("sha256", String(64)),
    Column("refs", Integer, nullable=False),
    Column("created", DateTime, nullable=False),
    Index("ix_blobs_owner_sha256", "owner_id", "sha256"),
)

# Resumable (tus) uploads in progress: all their state, so any server process can take
# the next PATCH (the bytes are in the blob store's staging area).
tus_uploads = Table(
    "tus_uploads",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(1024), nullable=False),
    Column("length", BigInteger, nullable=False),
    Column("upload_offset", BigInteger, nullable=False),
    Column("md5", String(32)),  # the whole file's MD5 as the client declared it, if it did
    Column("sha256", String(64)),  # the whole file's SHA-256 as the client declared it, if it did
    Column("upload_metadata", Text, nullable=False),  # Upload-Metadata as sent, echoed by HEAD
    Column("created", DateTime, nullable=False),
    Column("expires", DateTime, nullable=False, index=True),
    # "partial": one part of a concatenation (tus Upload-Concat), never a file by itself
    Column("concat", String(8)),
)

# Finished tus uploads, kept until they expire so that a client which lost the last PATCH's
# answer learns from HEAD that the upload is done and what was stored. A table of its own
# (not a column on tus_uploads) so that create_all adds it to an existing database.
tus_completed = Table(
    "tus_completed",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(1024), nullable=False),
    Column("length", BigInteger, nullable=False),
    Column("md5", String(32), nullable=False),  # the stored file's MD5, verified by the server
    Column("upload_metadata", Text, nullable=False),
    Column("stored", DateTime, nullable=False),  # the stored file's `created`
    Column("sha256", String(64)),  # the stored file's SHA-256
    Column("expires", DateTime, nullable=False, index=True),
)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Serialises concurrent create_tables() of several server processes on PostgreSQL (any constant).
SCHEMA_LOCK_KEY = 0x75_70_64_6C
# Only non-SQLite databases can race two first inserts of one name into a unique violation
# (FOR UPDATE locks no row that does not exist yet); the loser retries and finds the row.
PUT_ATTEMPTS = 3
# PostgreSQL's deadlock_detected: two links that swap blobs can lock two blob rows in opposite
# orders; PostgreSQL aborts one and it is simply run again.
_PG_DEADLOCK = "40P01"


def utcnow() -> datetime:
    """The current UTC time, naive, as stored in the catalog."""
    return datetime.now(UTC).replace(tzinfo=None)


def live(now: datetime) -> ColumnElement[bool]:
    """Files not expired at ``now``: an expired row is gone for every reader at once, before the sweep."""
    return or_(files.c.expires.is_(None), files.c.expires > now)


class VersionTerms(TypedDict, total=False):
    """What a new version of a name is stored under (``Catalog.put_file``/``link_file``)."""

    check: Callable[[str | None], bool] | None  # preconditions on the current MD5 (412)
    expires_in: int | None  # seconds until the sweep deletes it
    admit: Callable[[Connection, int, int | None], None] | None  # the quota check (507)
    mode: int | None  # permission bits the client recorded
    mtime: datetime | None  # modification time the client recorded


class UserExistsError(Exception):
    """``add_user`` was asked for a name that is taken."""


class PreconditionFailedError(Exception):
    """``put_file``'s ``check`` refused the current version (``current_md5``; ``None``: absent)."""

    def __init__(self, current_md5: str | None) -> None:
        """Remember what the check saw."""
        super().__init__(current_md5)
        self.current_md5 = current_md5


@dataclass(frozen=True)
class FileRecord:
    """One stored file version, as the catalog knows it."""

    id: int
    owner_id: int
    name: str
    size: int
    md5: str
    location: str
    created: datetime
    last_accessed: datetime | None
    expires: datetime | None = None
    mode: int | None = None
    mtime: datetime | None = None
    sha256: str | None = None

    @classmethod
    def from_row(cls, row: Row[Any]) -> FileRecord:
        """Build from a ``files`` row."""
        return cls(**row._mapping)


@dataclass(frozen=True)
class TusRecord:
    """A resumable upload in progress: who, what name, how far, until when."""

    id: str
    owner_id: int
    name: str
    length: int
    offset: int
    md5: str | None
    metadata: str
    created: datetime
    expires: datetime
    partial: bool = False  # a part of a concatenation (Upload-Concat: partial)
    sha256: str | None = None

    @classmethod
    def from_row(cls, row: Row[Any]) -> TusRecord:
        """Build from a ``tus_uploads`` row."""
        m = row._mapping
        return cls(
            id=m["id"],
            owner_id=m["owner_id"],
            name=m["name"],
            length=m["length"],
            offset=m["upload_offset"],
            md5=m["md5"],
            metadata=m["upload_metadata"],
            created=m["created"],
            expires=m["expires"],
            partial=m["concat"] == "partial",
            sha256=m["sha256"],
        )


@dataclass(frozen=True)
class TusCompletion:
    """A finished resumable upload: which file it stored, remembered until ``expires``."""

    id: str
    owner_id: int
    name: str
    length: int
    md5: str
    metadata: str
    stored: datetime
    expires: datetime
    sha256: str | None = None

    @classmethod
    def from_row(cls, row: Row[Any]) -> TusCompletion:
        """Build from a ``tus_completed`` row."""
        m = row._mapping
        return cls(
            id=m["id"],
            owner_id=m["owner_id"],
            name=m["name"],
            length=m["length"],
            md5=m["md5"],
            metadata=m["upload_metadata"],
            stored=m["stored"],
            expires=m["expires"],
            sha256=m["sha256"],
        )


class Catalog:
    """Users, tokens and file metadata in one SQL database."""

    def __init__(self, url: str) -> None:
        """Connect lazily to ``url`` (any SQLAlchemy URL; SQLite gets tuned for concurrency)."""
        self.url = url
        self.engine = _make_engine(url)
        self._reserve = SpaceReserve.for_database(url)
        self._writer = self.engine.execution_options(updl_write=True)
        self.clock: Callable[[], datetime] = utcnow  # tests replace it to make files expire

    def create_tables(self) -> None:
        """Create missing tables (idempotent, and safe when several processes start at once)."""
        with self._write() as conn:  # BEGIN IMMEDIATE on SQLite: one creator at a time
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            metadata.create_all(conn)
            _add_missing_columns(conn)
        self._reserve.keep()

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    @contextmanager
    def _bookkeeping(self, what: str) -> Iterator[None]:
        """Log, not raise, a database that cannot take a write made while reading."""
        try:
            yield
        except OperationalError as exc:  # disk full, database locked, connection lost
            log.warning("could not record the %s: %s", what, exc.orig)

    def _freeing(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a write transaction that frees space (a delete).

        On a full disk the reserve is given up and ``work`` runs once more;
        the reserve is made again, when there is room, before the next such write.
        """
        self._reserve.keep()
        try:
            with self._write() as conn:
                return work(conn)
        except OperationalError as exc:
            if not out_of_space(exc) or not self._reserve.release():
                raise
        log.warning("the disk is full: gave up the reserve %s to record a delete", self._reserve.path)
        with self._write() as conn:
            return work(conn)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        with self._writer.begin() as conn:
            yield conn

    # users and tokens

    def add_user(self, name: str) -> int:
        """Create user ``name`` and return its id; ``UserExistsError`` if taken."""
        try:
            with self._write() as conn:
                result = conn.execute(users.insert().values(name=name, created=utcnow()))
                key = result.inserted_primary_key
                assert key is not None
                return int(key[0])
        except IntegrityError as exc:
            raise UserExistsError(name) from exc

    def user_id(self, name: str) -> int | None:
        """The id of user ``name``, or ``None``."""
        with self.engine.connect() as conn:
            return conn.execute(select(users.c.id).where(users.c.name == name)).scalar()

    def add_token(self, user_id: int, token_id: str, secret_hash: str) -> None:
        """Record a token for ``user_id`` (only the secret's hash is stored)."""
        with self._write() as conn:
            conn.execute(tokens.insert().values(id=token_id, user_id=user_id, hash=secret_hash, created=utcnow()))

    # files

    def file(self, owner_id: int, name: str) -> FileRecord | None:
        """The current version of ``owner_id``'s file ``name``, or ``None``."""
        query = select(files).where(files.c.owner_id == owner_id, files.c.name == name, live(self.clock()))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else FileRecord.from_row(row)

    def list_files(
        self, owner_id: int, *, prefix: str = "", after: str | None = None, limit: int = 1000
    ) -> list[FileRecord]:
        """The owner's files starting with ``prefix``, after ``after``, by name (``limit`` max)."""
        query = select(files).where(files.c.owner_id == owner_id, live(self.clock()))
        if prefix:
            # substr, not LIKE: SQLite's LIKE ignores ASCII case and needs escaping.
            query = query.where(files.c.name >= prefix, func.substr(files.c.name, 1, len(prefix)) == prefix)
        if after is not None:
            query = query.where(files.c.name > after)
        query = query.order_by(files.c.name).limit(limit)
        with self.engine.connect() as conn:
            return [FileRecord.from_row(row) for row in conn.execute(query)]

    def usage(self, owner_id: int, prefix: str = "") -> tuple[int, int]:
        """How many of the owner's files start with ``prefix``, and their total size: one query."""
        query = select(func.count(), func.coalesce(func.sum(files.c.size), 0)).where(
            files.c.owner_id == owner_id, live(self.clock())
        )
        if prefix:
            query = query.where(files.c.name >= prefix, func.substr(files.c.name, 1, len(prefix)) == prefix)
        with self.engine.connect() as conn:
            count, total = conn.execute(query).one()
        return int(count), int(total)

    def list_entries(
        self, owner_id: int, *, prefix: str, delimiter: str, after: str | None = None, limit: int = 1000
    ) -> list[FileRecord | str]:
        """Folder-style listing (S3's ``ListObjectsV2`` with a delimiter), ``limit`` entries max.

        Each name below ``prefix`` whose rest contains ``delimiter`` is rolled up
        into its common prefix (``prefix`` + rest up to and including the first
        ``delimiter``), listed once as a ``str``; the others are listed as files.
        Entries come in name order, after ``after`` (a name or a common prefix).

        One query groups the names into keys and returns one page of them; a
        second fetches the files of that page. The grouping is in SQL so it does
        not depend on how the database's collation orders ``/``; its cost is a
        scan of the index range of names after ``after`` below ``prefix``.
        """
        start = len(prefix) + 1
        rest = func.substr(files.c.name, start)
        find = func.strpos if self.engine.dialect.name == "postgresql" else func.instr
        position = find(rest, delimiter)
        key = case(
            (position > 0, func.substr(files.c.name, 1, len(prefix) + position + len(delimiter) - 1)),
            else_=files.c.name,
        )
        inner = select(key.label("key"), case((position > 0, 1), else_=0).label("folder"))
        now = self.clock()
        inner = inner.where(files.c.owner_id == owner_id, live(now))
        if prefix:
            inner = inner.where(files.c.name >= prefix, func.substr(files.c.name, 1, len(prefix)) == prefix)
        if after is not None:
            # A key is a prefix of its names, so this only prunes names whose key is not
            # after ``after`` either; the outer query drops the rest of the last common prefix.
            inner = inner.where(files.c.name > after)
        # Grouping the subquery's columns (not the expression): PostgreSQL would not match
        # the expression's bound parameters in SELECT and GROUP BY.
        keyed = inner.subquery()
        query = select(keyed.c.key, func.max(keyed.c.folder).label("folder")).group_by(keyed.c.key)
        if after is not None:
            query = query.having(keyed.c.key > after)
        query = query.order_by(keyed.c.key).limit(limit)
        with self.engine.connect() as conn:
            keys = [(row.key, bool(row.folder)) for row in conn.execute(query)]
            file_names = [k for k, folder in keys if not folder]
            found: dict[str, FileRecord] = {}
            if file_names:
                rows = conn.execute(
                    select(files).where(files.c.owner_id == owner_id, files.c.name.in_(file_names), live(now))
                )
                found = {row.name: FileRecord.from_row(row) for row in rows}
        # A file replaced or deleted between the two queries is left out of the page.
        return [k if folder else found[k] for k, folder in keys if folder or k in found]

    def put_file(
        self,
        owner_id: int,
        name: str,
        size: int,
        md5: str,
        location: str,
        *,
        sha256: str | None = None,
        **version: Unpack[VersionTerms],
    ) -> tuple[FileRecord, str | None]:
        """Insert or replace the owner's file ``name`` with the new blob ``location``, in one transaction.

        Returns the new record and the location of the blob the replaced version
        leaves without a name (``None``: the name was new, or its blob has other
        names), which the caller deletes after commit.
        The current row is read locked (``FOR UPDATE`` on PostgreSQL; SQLite's
        ``BEGIN IMMEDIATE`` locks the database), so two writers of one name
        queue and each replaced location is handed out exactly once.
        ``version`` (see ``VersionTerms``): ``check``, given the current version's MD5
        (``None``: absent) under that lock, may refuse with ``PreconditionFailedError``;
        nothing changes then. An expired current version counts as absent.
        ``expires_in`` (seconds) sets the new version's expiry. ``admit`` (the quota
        check), given the transaction, ``size`` and the size of the live version
        replaced (``None``: none), may raise to refuse; nothing changes then either.
        ``mode``/``mtime`` are the attributes the client recorded (a new version replaces them).
        """

        def new_blob(conn: Connection) -> _Blob:
            blob = _Blob(location, size, md5, sha256)
            conn.execute(blobs.insert().values(owner_id=owner_id, refs=1, created=self.clock(), **blob.values()))
            return blob

        pointed = self._point(owner_id, name, size, new_blob, version)
        assert pointed is not None
        return pointed

    def link_file(
        self,
        owner_id: int,
        name: str,
        size: int,
        sha256: str,
        md5: str | None = None,
        within: str | None = None,
        **version: Unpack[VersionTerms],
    ) -> tuple[FileRecord, str | None] | None:
        """Point the owner's ``name`` at a blob of theirs with this size and SHA-256 (and MD5, if given).

        ``None`` when the owner holds no such content: nothing changed. Only the
        owner's own blobs are candidates (dedup never crosses users), and only
        those a live name holds (expired content stays gone), below ``within``
        if given (a prefix-limited token sees nothing outside it). Otherwise
        as ``put_file`` (the same ``version`` terms: preconditions, quota, expiry,
        attributes): the blob gains a reference in the same transaction that
        points the name at it (its row is locked, so a concurrent delete of its
        last name either waits for this link or leaves nothing to link to).
        """
        holders = [files.c.owner_id == owner_id, files.c.location == blobs.c.location, live(self.clock())]
        if within is not None:
            holders.append(files.c.name.startswith(within, autoescape=True))
        query = select(blobs).where(
            blobs.c.owner_id == owner_id,
            blobs.c.sha256 == sha256,
            blobs.c.size == size,
            blobs.c.refs > 0,
            exists().where(*holders),
        )
        if md5 is not None:
            query = query.where(blobs.c.md5 == md5)

        def existing_blob(conn: Connection) -> _Blob | None:
            row = conn.execute(query.limit(1)).first()
            if row is None:
                return None
            taken = conn.execute(
                blobs.update().where(blobs.c.location == row.location, blobs.c.refs > 0).values(refs=blobs.c.refs + 1)
            )
            if taken.rowcount != 1:
                return None  # its last name was deleted meanwhile
            return _Blob(row.location, row.size, row.md5, row.sha256)

        return self._point(owner_id, name, size, existing_blob, version)

    def _point(
        self,
        owner_id: int,
        name: str,
        size: int,
        take: Callable[[Connection], _Blob | None],
        version: VersionTerms,
    ) -> tuple[FileRecord, str | None] | None:
        """Point ``(owner, name)`` at the blob ``take`` claims (``None``: nothing to do), releasing the old one."""
        check, admit = version.get("check"), version.get("admit")
        created = self.clock()
        expires_in = version.get("expires_in")
        terms = {
            "created": created,
            "last_accessed": None,
            "expires": None if expires_in is None else created + timedelta(seconds=expires_in),
            "mode": version.get("mode"),
            "mtime": version.get("mtime"),
        }
        where = (files.c.owner_id == owner_id, files.c.name == name)
        for attempt in range(1, PUT_ATTEMPTS + 1):
            try:
                with self._write() as conn:
                    current = conn.execute(
                        select(files.c.location, files.c.md5, files.c.size, files.c.expires)
                        .where(*where)
                        .with_for_update()
                    ).first()
                    old = None if current is None else str(current.location)
                    alive = current is not None and (current.expires is None or current.expires > created)
                    old_md5 = str(current.md5) if current is not None and alive else None
                    if check is not None and not check(old_md5):
                        raise PreconditionFailedError(old_md5)
                    if admit is not None:
                        admit(conn, size, int(current.size) if current is not None and alive else None)
                    blob = take(conn)
                    if blob is None:
                        return None
                    values = {**blob.values(), **terms}
                    if old is None:
                        conn.execute(files.insert().values(owner_id=owner_id, name=name, **values))
                    else:
                        conn.execute(files.update().where(*where).values(**values))
                    row = conn.execute(select(files).where(*where)).one()
                    orphaned = None if old is None else release_blob(conn, old)
                return FileRecord.from_row(row), orphaned
            except (IntegrityError, OperationalError) as exc:
                # A concurrent first upload of the same name won the insert (now it is an update),
                # or PostgreSQL broke a deadlock between two links by aborting this one.
                retry = isinstance(exc, IntegrityError) or _PG_DEADLOCK in (
                    getattr(exc.orig, "sqlstate", None),
                    getattr(exc.orig, "pgcode", None),
                )
                if attempt == PUT_ATTEMPTS or not retry:
                    raise
        raise AssertionError("unreachable")

    def delete_file(self, owner_id: int, name: str) -> tuple[bool, str | None]:
        """Remove the owner's (live) file ``name``: whether it existed, and the blob location it
        leaves without a name (``None``: absent, or the blob has other names), which the caller deletes."""
        where = (files.c.owner_id == owner_id, files.c.name == name, live(self.clock()))

        def delete(conn: Connection) -> tuple[bool, str | None]:
            # Locked, so a concurrent replace cannot slip its new location under this delete.
            location = conn.execute(select(files.c.location).where(*where).with_for_update()).scalar()
            if location is None:
                return False, None
            conn.execute(files.delete().where(*where))
            return True, release_blob(conn, location)

        return self._freeing(delete)

    def record_access(self, file_id: int, when: datetime) -> None:
        """Set a file version's ``last_accessed`` (a replaced version is simply not found).

        Best effort: a failure is logged, and the download goes on.
        """
        with self._bookkeeping("access time"), self._write() as conn:
            conn.execute(files.update().where(files.c.id == file_id).values(last_accessed=when))

    def is_referenced(self, location: str) -> bool:
        """Whether any file row points at blob ``location``."""
        with self.engine.connect() as conn:
            found = conn.execute(select(files.c.id).where(files.c.location == location).limit(1))
            return found.first() is not None

    # tus uploads

    def add_tus_upload(self, upload: TusRecord) -> None:
        """Record a new resumable upload."""
        with self._write() as conn:
            conn.execute(
                tus_uploads.insert().values(
                    id=upload.id,
                    owner_id=upload.owner_id,
                    name=upload.name,
                    length=upload.length,
                    upload_offset=upload.offset,
                    md5=upload.md5,
                    sha256=upload.sha256,
                    upload_metadata=upload.metadata,
                    created=upload.created,
                    expires=upload.expires,
                    concat="partial" if upload.partial else None,
                )
            )

    def tus_upload(self, upload_id: str) -> TusRecord | None:
        """The resumable upload ``upload_id``, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(tus_uploads).where(tus_uploads.c.id == upload_id)).first()
        return None if row is None else TusRecord.from_row(row)

    def advance_tus_upload(self, upload_id: str, old_offset: int, new_offset: int, expires: datetime) -> bool:
        """Compare-and-set the offset from ``old_offset``; ``False`` if it had moved (or is gone)."""
        with self._write() as conn:
            result = conn.execute(
                tus_uploads.update()
                .where(tus_uploads.c.id == upload_id, tus_uploads.c.upload_offset == old_offset)
                .values(upload_offset=new_offset, expires=expires)
            )
            return result.rowcount == 1

    def delete_tus_upload(self, upload_id: str) -> None:
        """Forget a resumable upload (absent is fine)."""
        self._freeing(lambda conn: conn.execute(tus_uploads.delete().where(tus_uploads.c.id == upload_id)))

    def expired_tus_uploads(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of resumable uploads that expired before ``now``."""
        query = select(tus_uploads.c.id).where(tus_uploads.c.expires < now).limit(limit)
        with self.engine.connect() as conn:
            return [str(row.id) for row in conn.execute(query)]

    def has_tus_upload(self, upload_id: str) -> bool:
        """Whether a row for ``upload_id`` exists (expired or not)."""
        with self.engine.connect() as conn:
            found = conn.execute(select(tus_uploads.c.id).where(tus_uploads.c.id == upload_id))
            return found.first() is not None

    def complete_tus_upload(
        self, upload_id: str, md5: str, stored: datetime, expires: datetime, sha256: str | None = None
    ) -> None:
        """In one transaction, turn the upload's row into a completion (absent row: nothing)."""
        with self._write() as conn:
            row = conn.execute(select(tus_uploads).where(tus_uploads.c.id == upload_id)).first()
            if row is None:
                return
            upload = TusRecord.from_row(row)
            conn.execute(
                tus_completed.insert().values(
                    id=upload.id,
                    owner_id=upload.owner_id,
                    name=upload.name,
                    length=upload.length,
                    md5=md5,
                    upload_metadata=upload.metadata,
                    stored=stored,
                    expires=expires,
                    sha256=sha256,
                )
            )
            conn.execute(tus_uploads.delete().where(tus_uploads.c.id == upload_id))

    def concatenate_tus_uploads(
        self,
        final: TusRecord,
        part_ids: list[str],
        md5: str,
        stored: datetime,
        expires: datetime,
        sha256: str | None = None,
    ) -> None:
        """In one transaction, record ``final`` as completed and forget the partial uploads it consumed."""
        with self._write() as conn:
            conn.execute(
                tus_completed.insert().values(
                    id=final.id,
                    owner_id=final.owner_id,
                    name=final.name,
                    length=final.length,
                    md5=md5,
                    upload_metadata=final.metadata,
                    stored=stored,
                    expires=expires,
                    sha256=sha256,
                )
            )
            conn.execute(tus_uploads.delete().where(tus_uploads.c.id.in_(part_ids)))

    def tus_completion(self, upload_id: str) -> TusCompletion | None:
        """The finished upload ``upload_id``, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(tus_completed).where(tus_completed.c.id == upload_id)).first()
        return None if row is None else TusCompletion.from_row(row)

    def open_tus_uploads(self, now: datetime) -> int:
        """How many resumable uploads are unfinished and not expired at ``now`` (the metrics' gauge)."""
        query = select(func.count()).select_from(tus_uploads).where(tus_uploads.c.expires > now)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def delete_tus_completion(self, upload_id: str) -> None:
        """Forget a finished upload (absent is fine); its file is not touched."""
        self._freeing(lambda conn: conn.execute(tus_completed.delete().where(tus_completed.c.id == upload_id)))

    def delete_expired_tus_completions(self, now: datetime) -> int:
        """Forget finished uploads that expired before ``now``; return how many."""
        with self._write() as conn:
            result = conn.execute(tus_completed.delete().where(tus_completed.c.expires < now))
            return int(result.rowcount or 0)


@dataclass(frozen=True)
class _Blob:
    """The content a file row points at."""

    location: str
    size: int
    md5: str
    sha256: str | None

    def values(self) -> dict[str, Any]:
        """The columns ``files`` and ``blobs`` share."""
        return {"location": self.location, "size": self.size, "md5": self.md5, "sha256": self.sha256}


def release_blobs(conn: Connection, locations: Iterable[str]) -> list[str]:
    """``release_blob`` for each of ``locations`` (rows already gone); the ones left without a name."""
    return [location for location in (release_blob(conn, each) for each in locations) if location is not None]


def release_blob(conn: Connection, location: str) -> str | None:
    """Drop one reference to blob ``location``; the location if that was its last name.

    The decrement locks the blob's row, so of two transactions releasing its
    last two names the second sees the first's count: exactly one deletes it.
    A location without a row is a file stored before blobs were counted: its only name.
    """
    released = conn.execute(blobs.update().where(blobs.c.location == location).values(refs=blobs.c.refs - 1))
    if released.rowcount == 0:
        return location
    refs = conn.execute(select(blobs.c.refs).where(blobs.c.location == location)).scalar_one()
    if refs > 0:
        return None
    conn.execute(blobs.delete().where(blobs.c.location == location))
    return location


def _add_missing_columns(conn: Connection) -> None:
    """Add the columns a newer server defines to tables an older one created.

    ``create_all`` creates missing tables but never alters existing ones. New
    columns on existing tables are nullable or have a ``server_default``, so
    adding them leaves every old row valid; nothing is ever dropped or renamed.
    """
    inspector = inspect(conn)
    existing_tables = set(inspector.get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in existing_tables:
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable and column.server_default is None:
                raise RuntimeError(f"column {table.name}.{column.name} must be nullable or have a server_default")
            ddl = CreateColumn(column).compile(dialect=conn.dialect)
            log.warning("upgrading the catalog: adding column %s.%s", table.name, column.name)
            conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {ddl}"))


def _make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and explicit transaction control."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(
        url,
        pool_size=10,
        max_overflow=30,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN below is ours.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _use_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front (waiting on busy_timeout), so a
        # read-then-write transaction never fails with SQLITE_BUSY half way.
        immediate = conn.get_execution_options().get("updl_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _use_wal(cursor: Any) -> None:
    """Switch a SQLite database to WAL (persistent, so usually already done).

    Switching needs an exclusive lock and SQLite answers "database is locked"
    at once, without waiting on the busy timeout, when another process holds
    one: that happens when several workers open a fresh database together.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # back off; the other process's switch takes milliseconds
