"""Helpers for the ``updl`` command through click's CliRunner against the scripted server."""

from __future__ import annotations

from click.testing import CliRunner, Result

from tests.support.scripted import TOKEN, URL
from updl.cli import Environment, cli


class FakeClock:
    """A clock that stands still (at ``now``) unless a test moves it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """``updl --url URL --token TOKEN ARGS`` in-process, never sleeping, on a still clock."""
    runner = CliRunner()
    return runner.invoke(
        cli, ["--url", URL, "--token", TOKEN, *args], env=env, obj=Environment(sleep=lambda s: None, clock=FakeClock())
    )


def error_line(result: Result) -> str:
    """The last line of stderr, asserted to be updl's one-line error (no traceback)."""
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("updl: error: ")
    assert "Traceback" not in result.stderr
    return lines[-1]
