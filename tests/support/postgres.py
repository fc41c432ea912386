"""PostgreSQL for the server tests: where it is (``TEST_DATABASE_URL``) and a fresh database per test.

``eval "$(bash scripts/start-postgres.sh)"`` starts a throwaway cluster and sets
``TEST_DATABASE_URL``. Without it the PostgreSQL tests skip, except under
``CI=true``, where a missing database is a broken CI script and fails loudly.
(Not an ``UPDL_`` variable: the autouse fixture clears those for every test.)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

ENV_VAR = "TEST_DATABASE_URL"


def libpq_url(sqlalchemy_url: str, database: str | None = None) -> str:
    """A psycopg connection string for a SQLAlchemy ``postgresql+psycopg://`` URL."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The maintenance URL of the test cluster; skip (or, with ``CI=true``, fail) without one."""
    url = os.environ.get(ENV_VAR, "")
    if not url:
        message = (f"{ENV_VAR} is not set; run: eval \"$(bash scripts/start-postgres.sh)\"")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {ENV_VAR} is not set: .ci/run must start PostgreSQL "
                        f"({message})")
        pytest.skip(message)
    if not url.startswith("postgresql"):
        pytest.fail(f"{ENV_VAR} must be a postgresql+psycopg:// URL, not {url!r}")
    return url


@pytest.fixture
def pg_database(postgres_url: str) -> Iterator[str]:
    """A brand-new, empty database for one test; its SQLAlchemy URL. Dropped afterwards."""
    import psycopg  # imported here: only PostgreSQL tests need the driver

    name = f"updl_t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(libpq_url(postgres_url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_url(postgres_url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_rows(url: str, query: str) -> list[tuple[object, ...]]:
    """Run ``query`` on the database at SQLAlchemy ``url`` directly (not through the server)."""
    import psycopg

    with psycopg.connect(libpq_url(url)) as conn:
        return list(conn.execute(query).fetchall())
