"""Retention and quotas for tests: move a file's expiry into the past, set a user's limits, run ``sweep``.

A live server is another process, so its clock cannot be replaced: making a
file expire means writing an ``expires`` in the past into its row, which is
what the passing of time would do. In-process tests replace ``Catalog.clock``.
"""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta

from tests.support.live_server import LiveServer, clean_env, console_script
from updl_server.catalog import Catalog, files, utcnow
from updl_server.config import ServerConfig

PAST = timedelta(seconds=1)


def server_catalog(server: LiveServer) -> Catalog:
    """A catalog on the server's database (close it after use)."""
    return Catalog(ServerConfig(data_dir=server.data_dir, db_url=server.db_url()).database_url)


def expire(server: LiveServer, name: str, when: datetime | None = None) -> None:
    """Make every user's file ``name`` expire at ``when`` (default: a second ago)."""
    catalog = server_catalog(server)
    try:
        with catalog.engine.begin() as conn:
            result = conn.execute(files.update().where(files.c.name == name).values(expires=when or utcnow() - PAST))
            assert result.rowcount >= 1, f"no file {name!r} to expire"
    finally:
        catalog.close()


def server_command(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``updl-server ARGS --data-dir ... [--db-url ...]`` beside the running server."""
    return subprocess.run(
        [console_script("updl-server"), *args, "--data-dir", str(server.data_dir), *server.db_args()],
        capture_output=True,
        text=True,
        env=clean_env(**server.env),
        timeout=60,
    )


def set_quota(server: LiveServer, user: str, *options: str) -> str:
    """``updl-server quota USER OPTIONS``; its output."""
    result = server_command(server, "quota", user, *options)
    assert result.returncode == 0, result.stderr
    return result.stdout
