"""The ``updl`` command: parse, resolve settings, call the SDK, render, map errors to exit codes.

Never builds an HTTP request: everything on the wire goes through
:class:`updl.sdk.Client`.
"""

from __future__ import annotations

import sys

import click

from .commands import access, listing, share, sync, transfer  # noqa: F401 - importing a command module registers its commands
from .commands.base import Environment, Options, _stdout_closed, cli

__all__ = ["Environment", "Options", "cli", "main"]


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="updl")
    except BrokenPipeError:  # raised outside a command, e.g. by the final flush of --help output
        try:
            _stdout_closed(Environment())
        except click.exceptions.Exit as exit_:
            sys.exit(exit_.exit_code)
