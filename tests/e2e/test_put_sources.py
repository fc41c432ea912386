"""``updl put`` and its sources against a live server: files changing under it, symlinks, missing files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner, Result

from tests.conftest import LiveServer
from updl.cli import Environment, cli

FLIP = bytes(b ^ 0xFF for b in range(256))


def updl(server: LiveServer, token: str, *args: str, env: Environment | None = None) -> Result:
    """The CLI in-process (CliRunner), as the given user."""
    return CliRunner().invoke(cli, ["--url", server.url, "--token", token, *args],
                              obj=env or Environment(sleep=lambda _s: None))


class RewritingClock:
    """The CLI's clock, which the progress view reads on every event: each call rewrites ``path``.

    Every byte flipped and a new mtime each time (so the change shows whatever
    the file system's timestamp granularity): the file never holds still.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        data = self.path.read_bytes()
        with self.path.open("r+b") as f:
            f.write(data.translate(FLIP))
        os.utime(self.path, ns=(self.calls * 10**9, self.calls * 10**9))
        return 100.0


def test_put_of_a_file_that_keeps_changing_fails_after_the_retries_and_stores_nothing(
        live_server: LiveServer, token: str, tmp_path: Path) -> None:
    source = tmp_path / "busy.log"
    source.write_bytes(bytes(range(256)) * 1200)
    env = Environment(sleep=lambda _s: None, clock=RewritingClock(source))
    result = updl(live_server, token, "put", "--retries", "1", str(source), env=env)
    assert result.exit_code == 1, result.stderr
    lines = result.stderr.splitlines()
    assert sum("retrying (attempt 2 of 2)" in line for line in lines) == 1
    assert lines[-1] == (f"updl: error: {source} changed while it was being uploaded (modified); nothing "
                         "was stored: upload it again once it is complete (after 2 attempts)")
    assert updl(live_server, token, "info", "busy.log").exit_code == 4
