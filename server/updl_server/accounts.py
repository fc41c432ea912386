"""Users and their tokens in the catalog: scoped tokens, revocation, disabling, deleting.

The tables are the catalog's (``catalog.py``); the queries about accounts live
here so the catalog module stays about files. Every check reads the database:
there is no per-process cache, so a revocation, an expiry or a disabled user
takes effect on the next request on every worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, func, select

from .access import FULL
from .catalog import Catalog, blobs, files, release_blobs, tokens, tus_completed, tus_uploads, users
from .formats import isoformat

# Writing last_used on every request would turn every read into a DB write.
USE_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenRecord:
    """A token as the catalog knows it (never its secret, only the secret's hash)."""

    id: str
    user_id: int
    user: str
    secret_hash: str
    scopes: tuple[str, ...]
    prefix: str | None
    label: str | None
    created: datetime
    expires: datetime | None
    last_used: datetime | None
    revoked: datetime | None
    user_disabled: datetime | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> TokenRecord:
        """Build from a ``tokens`` row joined with its user's ``name`` and ``disabled``."""
        m = row._mapping
        return cls(
            id=m["id"],
            user_id=m["user_id"],
            user=m["name"],
            secret_hash=m["hash"],
            scopes=tuple(s for s in str(m["scopes"]).split(",") if s),
            prefix=m["name_prefix"],
            label=m["label"],
            created=m["created"],
            expires=m["expires"],
            last_used=m["last_used"],
            revoked=m["revoked"],
            user_disabled=m["disabled"],
        )

    def to_json(self) -> dict[str, Any]:
        """The token's public description (the API's and ``token list --json``'s): never its secret or hash."""
        return {
            "id": self.id,
            "user": self.user,
            "scopes": list(self.scopes),
            "prefix": self.prefix,
            "label": self.label,
            "created": isoformat(self.created),
            "expires": isoformat(self.expires),
            "last_used": isoformat(self.last_used),
            "revoked": isoformat(self.revoked),
        }


@dataclass(frozen=True)
class UserRecord:
    """A user with what it holds."""

    id: int
    name: str
    created: datetime
    last_login: datetime | None
    disabled: datetime | None
    tokens: int
    files: int
    bytes: int


_TOKEN_COLUMNS = (
    tokens.c.id,
    tokens.c.user_id,
    tokens.c.hash,
    tokens.c.scopes,
    tokens.c.name_prefix,
    tokens.c.label,
    tokens.c.created,
    tokens.c.expires,
    tokens.c.last_used,
    tokens.c.revoked,
    users.c.name,
    users.c.disabled,
)


class Accounts:
    """The account queries over one :class:`Catalog` (its engine and its write transactions)."""

    def __init__(self, catalog: Catalog) -> None:
        """Query ``catalog``'s database."""
        self.catalog = catalog

    def _select_tokens(self) -> Any:
        return select(*_TOKEN_COLUMNS).join(users, users.c.id == tokens.c.user_id)

    def add_token(
        self,
        user_id: int,
        token_id: str,
        secret_hash: str,
        *,
        scopes: tuple[str, ...] | None = None,
        prefix: str | None = None,
        label: str | None = None,
        expires: datetime | None = None,
        now: datetime,
    ) -> None:
        """Record a token for ``user_id`` with its limits (only the secret's hash is stored)."""
        with self.catalog._write() as conn:  # the catalog's own write transaction (BEGIN IMMEDIATE)
            conn.execute(
                tokens.insert().values(
                    id=token_id,
                    user_id=user_id,
                    hash=secret_hash,
                    created=now,
                    scopes=",".join(scopes) if scopes else FULL,
                    name_prefix=prefix,
                    label=label,
                    expires=expires,
                )
            )

    def token(self, token_id: str) -> TokenRecord | None:
        """Token ``token_id`` with its user, or ``None``."""
        with self.catalog.engine.connect() as conn:
            row = conn.execute(self._select_tokens().where(tokens.c.id == token_id)).first()
        return None if row is None else TokenRecord.from_row(row)

    def tokens(self, user_id: int | None = None) -> list[TokenRecord]:
        """Every token (of ``user_id``), by user then creation."""
        query = self._select_tokens()
        if user_id is not None:
            query = query.where(tokens.c.user_id == user_id)
        with self.catalog.engine.connect() as conn:
            rows = conn.execute(query.order_by(users.c.name, tokens.c.created, tokens.c.id))
            return [TokenRecord.from_row(row) for row in rows]

    def record_use(self, token_id: str, user_id: int, when: datetime) -> None:
        """Set the token's ``last_used`` and its user's ``last_login`` (best effort: a failure is logged)."""
        with self.catalog._bookkeeping("token use"), self.catalog._write() as conn:
            conn.execute(tokens.update().where(tokens.c.id == token_id).values(last_used=when))
            conn.execute(users.update().where(users.c.id == user_id).values(last_login=when))

    def revoke_token(self, token_id: str, when: datetime, *, user_id: int | None = None) -> bool:
        """Mark the token revoked (of ``user_id`` only, if given); ``False`` if there is none.

        Revoking a revoked token is fine and keeps the first time.
        """
        where = [tokens.c.id == token_id]
        if user_id is not None:
            where.append(tokens.c.user_id == user_id)
        with self.catalog._write() as conn:
            found = conn.execute(select(tokens.c.revoked).where(*where)).first()
            if found is None:
                return False
            if found.revoked is None:
                conn.execute(tokens.update().where(*where).values(revoked=when))
            return True

    def users(self) -> list[UserRecord]:
        """Every user, by name, with how many tokens (not revoked) and files it has."""
        live_tokens = (
            select(func.count()).where(tokens.c.user_id == users.c.id, tokens.c.revoked.is_(None)).scalar_subquery()
        )
        file_count = select(func.count()).where(files.c.owner_id == users.c.id).scalar_subquery()
        file_bytes = (
            select(func.coalesce(func.sum(files.c.size), 0)).where(files.c.owner_id == users.c.id).scalar_subquery()
        )
        query = select(users, live_tokens.label("n_tokens"), file_count.label("n_files"), file_bytes.label("n_bytes"))
        with self.catalog.engine.connect() as conn:
            return [
                UserRecord(
                    id=row.id,
                    name=row.name,
                    created=row.created,
                    last_login=row.last_login,
                    disabled=row.disabled,
                    tokens=int(row.n_tokens),
                    files=int(row.n_files),
                    bytes=int(row.n_bytes),
                )
                for row in conn.execute(query.order_by(users.c.name))
            ]

    def set_disabled(self, name: str, when: datetime | None) -> bool:
        """Disable (``when``) or enable (``None``) user ``name``; ``False`` if there is none."""
        with self.catalog._write() as conn:
            result = conn.execute(users.update().where(users.c.name == name).values(disabled=when))
            return result.rowcount == 1

    def delete_user(self, name: str) -> list[str] | None:
        """Delete user ``name`` with its tokens, files and uploads; return the blob locations to delete.

        ``None`` if there is no such user. The rows go first, in one transaction,
        so a reader never finds a row without a blob; the caller deletes the blobs.
        """

        def delete(conn: Connection) -> list[str] | None:
            user_id = conn.execute(select(users.c.id).where(users.c.name == name).with_for_update()).scalar()
            if user_id is None:
                return None
            # The locations the deleted rows held, as deleted (RETURNING): a concurrent link that
            # repointed a name before this delete took its row is seen, not a stale earlier read.
            gone = files.delete().where(files.c.owner_id == user_id).returning(files.c.location)
            named = [str(loc) for loc in conn.execute(gone).scalars()]
            # Explicitly, child tables first: SQLite enforces ON DELETE CASCADE only with foreign_keys on.
            for table in (tus_uploads, tus_completed):
                conn.execute(table.delete().where(table.c.owner_id == user_id))
            # Each name releases its blob; a blob with several names is handed out once, with its last.
            locations = release_blobs(conn, named)
            conn.execute(blobs.delete().where(blobs.c.owner_id == user_id))  # all released above; the rows go too
            conn.execute(tokens.delete().where(tokens.c.user_id == user_id))
            conn.execute(users.delete().where(users.c.id == user_id))
            return locations

        return self.catalog._freeing(delete)
