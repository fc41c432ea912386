"""Fixtures for the server's tests: clients for fresh users, PostgreSQL databases, S3 buckets."""

from __future__ import annotations

import itertools
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.support.api import Api
from tests.support.live_server import LiveServer
from tests.support.postgres import ENV_VAR, libpq_url
from tests.support.s3 import AWS_ENV, Bucket


@pytest.fixture
def api(live_server: LiveServer, token: str) -> Api:
    """A fresh user on the session's server."""
    return Api(live_server.url, token)


_extra_users = itertools.count(1)  # unique per process: the session's server outlives each test


@pytest.fixture
def make_api() -> Callable[[LiveServer], Api]:
    """A fresh user on a given server (e.g. one from ``server_factory``)."""

    def make(server: LiveServer) -> Api:
        return Api(server.url, server.add_user(f"extra{next(_extra_users)}-{os.getpid()}"))

    return make


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The maintenance URL of the test cluster; skip (or, with ``CI=true``, fail) without one."""
    url = os.environ.get(ENV_VAR, "")
    if not url:
        message = f'{ENV_VAR} is not set; run: eval "$(bash scripts/start-postgres.sh)"'
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {ENV_VAR} is not set: .ci/run must start PostgreSQL ({message})")
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


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server in a thread of the test process, on a free port."""
    moto_server = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str) -> Bucket:
    """A new, empty bucket."""
    boto3 = pytest.importorskip("boto3")
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = f"updl-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return Bucket(s3_endpoint, name, client)


@pytest.fixture
def s3_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LiveServer]]:
    """Start ``updl-server run --storage s3://...`` processes: ``start(bucket, *args, data_dir=)``."""
    started: list[LiveServer] = []

    def start(bucket: Bucket, *args: str, data_dir: Path | None = None) -> LiveServer:
        server = LiveServer(
            data_dir=data_dir or tmp_path_factory.mktemp("s3-server-data"),
            args=("--storage", bucket.storage, "--s3-endpoint-url", bucket.endpoint, *args),
            env=AWS_ENV,
        )
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
