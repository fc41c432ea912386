"""The ``updl`` command: parse, resolve settings, call the SDK, render, map errors to exit codes.

Never builds an HTTP request: everything on the wire goes through
:class:`updl.sdk.Client`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from . import __version__
from .console import PlainView, QuietView, RichView, TransferView, files_table, info_lines, json_line
from .exitcodes import ExitCode, describe, epilog
from .sdk.client import Client
from .sdk.config import load_settings
from .sdk.models import FileInfo

__all__ = ["Environment", "cli", "main"]


@dataclass(frozen=True)
class Environment:
    """What the CLI takes from the outside world besides streams; tests pass their own as ``obj``."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


@dataclass
class Options:
    """The global options, and the client made from them on first use."""

    url: str | None = None
    token: str | None = None
    profile: str | None = None
    json: bool = False
    quiet: bool = False
    debug: bool = False
    env: Environment = field(default_factory=Environment)
    _client: Client | None = field(default=None, repr=False)

    def client(self) -> Client:
        """The SDK client for these options (settings resolved once, here)."""
        if self._client is None:
            self._client = Client(settings=load_settings(self.url, self.token, self.profile),
                                  sleep=self.env.sleep)
            click.get_current_context().call_on_close(self._client.close)
        return self._client

    def view(self) -> TransferView:
        """How to show transfers: rich bars on a terminal, plain lines in a log, nothing if quiet."""
        stderr = sys.stderr
        if self.quiet:
            return QuietView()
        if stderr.isatty():
            return RichView(Console(file=stderr), clock=self.env.clock)
        return PlainView(stderr, clock=self.env.clock)

    def emit(self, data: dict[str, Any]) -> None:
        """One ``--json`` result line on stdout."""
        click.echo(json_line(data))


class UpdlGroup(click.Group):
    """Turns any exception from a command into one ``updl: error:`` line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (Exception, KeyboardInterrupt) as exc:  # the CLI's last line of defence
            options = ctx.find_object(Options)
            debug = (options.debug if options else False) or os.environ.get("UPDL_DEBUG") == "1"
            described = describe(exc)
            code, message = described if described else (
                ExitCode.FAILURE, f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)")
            if debug:
                traceback.print_exception(exc, file=sys.stderr)
            click.echo(f"updl: error: {message}", err=True)
            raise click.exceptions.Exit(int(code)) from None


@click.group(cls=UpdlGroup, epilog=epilog(), context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", metavar="URL", help="Server URL [env UPDL_URL; default http://127.0.0.1:8000].")
@click.option("--token", metavar="TOKEN", help="API token [env UPDL_TOKEN].")
@click.option("--profile", metavar="NAME", help="Config file profile [env UPDL_PROFILE; default 'default'].")
@click.option("--json", "json_output", is_flag=True, help="Print one JSON object per result on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress, status or retry lines; errors only.")
@click.option("--debug", is_flag=True, help="Show tracebacks and HTTP/retry logs [env UPDL_DEBUG=1].")
@click.version_option(__version__, "--version", prog_name="updl")
@click.pass_context
def cli(ctx: click.Context, url: str | None, token: str | None, profile: str | None,
        json_output: bool, quiet: bool, debug: bool) -> None:
    """Integrity-first file transfer: every upload and download is MD5-verified.

    Settings come from flags, then UPDL_URL / UPDL_TOKEN / UPDL_PROFILE, then
    the config file (UPDL_CONFIG, or config.toml in the user config dir,
    one [profile] table each with url, token, retries, timeout), then defaults.
    """
    debug = debug or os.environ.get("UPDL_DEBUG") == "1"
    if debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="updl: debug: %(name)s: %(message)s")
    env = ctx.obj if isinstance(ctx.obj, Environment) else Environment()
    ctx.obj = Options(url=url, token=token, profile=profile, json=json_output, quiet=quiet, debug=debug,
                      env=env)


pass_options = click.make_pass_decorator(Options)
retries_option = click.option("--retries", type=click.IntRange(min=0), metavar="N",
                              help="Retries after the first attempt [default: config or 3].")


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=str))
@click.option("--name", metavar="NAME", help="Name to store under (one FILE only; required for '-').")
@retries_option
@pass_options
def put(options: Options, files: tuple[str, ...], name: str | None, retries: int | None) -> None:
    """Upload FILE(s); each is stored under its base name unless --name is given.

    FILE may be '-' for standard input (with --name). Stops at the first failure.
    """
    if name is not None and len(files) > 1:
        raise click.UsageError("--name works with one FILE only")
    if "-" in files and name is None:
        raise click.UsageError("uploading standard input ('-') needs --name")
    client = options.client()
    view = options.view()
    try:
        for path in files:
            stored = name or os.path.basename(path.rstrip("/"))
            source = sys.stdin.buffer if path == "-" else Path(path)
            view.begin(stored, "uploading")
            info = client.upload(source, stored, on_progress=view.progress, on_retry=view.retry,
                                 retries=retries)
            view.done(info, "uploaded")
            if options.json:
                options.emit(info.to_json())
    finally:
        view.close()


@cli.command()
@click.argument("name")
@click.option("-o", "--output", metavar="PATH",
              help="Where to write: a file, a directory (gets the base name), or '-' for stdout "
                   "[default: ./<base name of NAME>].")
@retries_option
@pass_options
def get(options: Options, name: str, output: str | None, retries: int | None) -> None:
    """Download NAME; it appears at the destination only once its MD5 is verified."""
    client = options.client()
    view = options.view()
    basename = name.rsplit("/", 1)[-1]
    try:
        view.begin(name, "downloading")
        if output == "-":
            if options.json:
                raise click.UsageError("--json cannot be combined with -o -")
            info = client.download(name, sys.stdout.buffer, on_progress=view.progress,
                                   on_retry=view.retry, retries=retries)
            view.done(info, "downloaded", "stdout")
            return
        dest = Path(output) if output else Path(basename)
        if dest.is_dir():
            dest = dest / basename
        info = client.download(name, dest, on_progress=view.progress, on_retry=view.retry,
                               retries=retries)
        view.done(info, "downloaded", str(dest))
        if options.json:
            options.emit({**info.to_json(), "path": str(dest)})
    finally:
        view.close()


@cli.command(name="ls")
@click.argument("prefix", required=False)
@pass_options
def list_files(options: Options, prefix: str | None) -> None:
    """List your files (those whose names start with PREFIX, if given)."""
    client = options.client()
    if options.json:
        for info in client.iter_files(prefix):
            options.emit(info.to_json())
        return
    files: list[FileInfo] = client.list(prefix)
    if not files:
        if not options.quiet:
            click.echo("updl: no files" + (f" starting with {prefix!r}" if prefix else ""), err=True)
        return
    stdout = sys.stdout
    # A log or pipe has no width: size the table to its content rather than wrap at 80 columns.
    width = None if stdout.isatty() else 200 + max(len(f.name) for f in files)
    Console(file=stdout, width=width, highlight=False).print(files_table(files))


@cli.command()
@click.argument("name")
@pass_options
def info(options: Options, name: str) -> None:
    """Show NAME's size, MD5 and times."""
    result = options.client().info(name)
    if options.json:
        options.emit(result.to_json())
    else:
        for line in info_lines(result):
            click.echo(line)


@cli.command()
@click.argument("names", nargs=-1, required=True)
@pass_options
def rm(options: Options, names: tuple[str, ...]) -> None:
    """Delete NAME(s). Stops at the first failure."""
    client = options.client()
    view = options.view()
    try:
        for name in names:
            client.delete(name)
            if options.json:
                options.emit({"name": name, "deleted": True})
            else:
                view.note(f"deleted {name}")
    finally:
        view.close()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="updl")
