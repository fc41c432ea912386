"""PostgreSQL for the server tests: where it is (``TEST_DATABASE_URL``) and a fresh database per test.

``eval "$(bash scripts/start-postgres.sh)"`` starts a throwaway cluster and sets
``TEST_DATABASE_URL``. Without it the PostgreSQL tests skip, except under
``CI=true``, where a missing database is a broken CI script and fails loudly.
(Not an ``UPDL_`` variable: the autouse fixture clears those for every test.) The fixtures,
``postgres_url`` and ``pg_database``, are in ``tests/server/conftest.py``.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

ENV_VAR = "TEST_DATABASE_URL"


def libpq_url(sqlalchemy_url: str, database: str | None = None) -> str:
    """A psycopg connection string for a SQLAlchemy ``postgresql+psycopg://`` URL."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def pg_rows(url: str, query: str) -> list[tuple[object, ...]]:
    """Run ``query`` on the database at SQLAlchemy ``url`` directly (not through the server)."""
    import psycopg

    with psycopg.connect(libpq_url(url)) as conn:
        return list(conn.execute(query).fetchall())
