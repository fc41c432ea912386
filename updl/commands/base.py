"""What every ``updl`` command shares: the environment, the global options, the group that maps errors to exit codes."""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn, TextIO

import click
from rich.console import Console

from ..console import PlainView, QuietView, RichView, TransferView, json_line
from ..exitcodes import ExitCode, describe, epilog
from ..reporting import BatchReport
from ..sdk.client import Client
from ..sdk.config import load_settings, parse_size
from ..sdk.errors import ConfigWarning
from ..sdk.retention import parse_duration
from ..sdk.retry import RetryEvent
from ..sdk.version import __version__


@dataclass(frozen=True)
class Environment:
    """What the CLI takes from the outside world: streams, sleep, clock; tests pass their own as ``obj``.

    A stream left ``None`` is the process's own, looked up each time it is
    used (:meth:`stdout_now`): while rich draws bars it replaces ``sys.stdout``
    and ``sys.stderr`` with redirects that print above them, and click's
    ``CliRunner`` swaps them per invocation. A test that needs a terminal
    passes streams whose ``isatty()`` says so instead of patching ``sys``.
    """

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    stdin: TextIO | None = None
    stdout: TextIO | None = None
    stderr: TextIO | None = None

    def stdin_now(self) -> TextIO:
        """Standard input: the one given, else ``sys.stdin`` as it is now."""
        return self.stdin if self.stdin is not None else sys.stdin

    def stdout_now(self) -> TextIO:
        """Standard output: the one given, else ``sys.stdout`` as it is now."""
        return self.stdout if self.stdout is not None else sys.stdout

    def stderr_now(self) -> TextIO:
        """Standard error: the one given, else ``sys.stderr`` as it is now."""
        return self.stderr if self.stderr is not None else sys.stderr


@dataclass
class Options:
    """The global options, and the client made from them on first use."""

    url: str | None = None
    token: str | None = None
    profile: str | None = None
    ca_bundle: str | None = None
    json: bool = False
    quiet: bool = False
    debug: bool = False
    env: Environment = field(default_factory=Environment)
    resumable_threshold: int | None = None  # put's --resumable-threshold, over the settings
    parallel_parts: int | None = None  # put's --parts, over the settings
    retries: int | None = None  # put's/get's --retries, over the settings: for every request they send
    connections: int | None = None  # get's --connections, over the settings
    checksum: str | None = None  # put's/get's --checksum, over the settings
    dedup: bool | None = None  # put's --no-dedup, over the settings
    _client: Client | None = field(default=None, repr=False)

    def client(self) -> Client:
        """The SDK client for these options (settings resolved once, here)."""
        if self._client is None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConfigWarning)
                settings = load_settings(self.url, self.token, self.profile, ca_bundle=self.ca_bundle)
            for warning in caught:
                if issubclass(warning.category, ConfigWarning):
                    click.echo(f"updl: warning: {warning.message}", file=self.env.stderr, err=True)
                else:
                    warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
            if self.resumable_threshold is not None:
                settings = replace(settings, resumable_threshold=self.resumable_threshold)
            if self.retries is not None:
                settings = replace(settings, retries=self.retries)
            if self.parallel_parts is not None:
                settings = replace(settings, parallel_parts=self.parallel_parts)
            if self.connections is not None:
                settings = replace(settings, download_connections=self.connections)
            if self.checksum is not None:
                settings = replace(settings, checksum=self.checksum)
            if self.dedup is not None:
                settings = replace(settings, dedup=self.dedup)
            _show_sdk_warnings(not (self.quiet or self.debug), self.env)
            self._client = Client(
                settings=settings, sleep=self.env.sleep, on_retry=None if self.quiet else self._print_retry
            )
            click.get_current_context().call_on_close(self._client.close)
        return self._client

    def view(self) -> TransferView:
        """How to show transfers: rich bars on a terminal, plain lines in a log, nothing if quiet."""
        stderr = self.env.stderr_now()
        if self.quiet:
            return QuietView()
        if stderr.isatty():
            return RichView(
                Console(file=stderr), clock=self.env.clock, stdout_on_terminal=self.env.stdout_now().isatty()
            )
        return PlainView(stderr, clock=self.env.clock)

    def emit(self, data: dict[str, Any]) -> None:
        """One ``--json`` result line on stdout."""
        click.echo(json_line(data), file=self.env.stdout)

    def report(self, verb: str, files: int) -> BatchReport:
        """How to report a batch of ``files`` transfers (``verb``: uploaded or downloaded)."""
        return BatchReport(
            self.view(),
            self.json,
            verb,
            files,
            clock=self.env.clock,
            quiet=self.quiet,
            stdout=self.env.stdout,
            stderr=self.env.stderr,
        )

    def _print_retry(self, event: RetryEvent) -> None:
        """The retry line of a request outside a transfer view (ls, info, rm, a batch's HEADs and listing)."""
        PlainView(self.env.stderr_now()).retry(event)  # stderr now: under rich bars it is rich's redirect


# The global options: defined once, accepted before the subcommand and after it (``updl ls --json``,
# ``updl put f -q``). Each is added to the group and to every subcommand; its callback writes
# into the one Options object, so a value given after the subcommand overrides one given before.
GLOBAL_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--url",), {"metavar": "URL", "help": "Server URL [env UPDL_URL; default http://127.0.0.1:8000]."}),
    (("--token",), {"metavar": "TOKEN", "help": "API token [env UPDL_TOKEN]."}),
    (("--profile",), {"metavar": "NAME", "help": "Config file profile [env UPDL_PROFILE; default 'default']."}),
    (
        ("--ca-bundle",),
        {"metavar": "PEM", "help": "Trust this CA for https:// (a self-signed server) [env UPDL_CA_BUNDLE]."},
    ),
    (("--json",), {"is_flag": True, "help": "Print one JSON object per result on stdout."}),
    (
        ("-q", "--quiet"),
        {"is_flag": True, "help": "No progress, status, retry or result lines; errors only (--json stays)."},
    ),
    (("--debug",), {"is_flag": True, "help": "Show tracebacks and HTTP/retry logs [env UPDL_DEBUG=1]."}),
]


def _options_of(ctx: click.Context) -> Options:
    """The one :class:`Options` of this invocation, kept on the root context (made on first use)."""
    root = ctx.find_root()
    if not isinstance(root.obj, Options):
        root.obj = Options(env=root.obj if isinstance(root.obj, Environment) else Environment())
    return root.obj


def _set_global(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Record a global option given on the command line (wherever it was)."""
    if value is not None and value is not False:
        setattr(_options_of(ctx), str(param.name), value)
        if param.name == "debug":
            _enable_debug(_options_of(ctx).env)
    return value


def _enable_debug(env: Environment) -> None:
    logging.basicConfig(level=logging.DEBUG, stream=env.stderr_now(), format="updl: debug: %(name)s: %(message)s")


class _GlobalOptions(click.Command):
    """Adds :data:`GLOBAL_OPTIONS` to a command's own parameters."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(
            click.Option(decls, expose_value=False, callback=_set_global, **attrs) for decls, attrs in GLOBAL_OPTIONS
        )


class UpdlCommand(_GlobalOptions):
    """Every ``updl`` subcommand: its own options plus the global ones."""


# Names people type from other tools, and the updl command they mean.
ALIASES = {"upload": "put", "download": "get", "delete": "rm", "remove": "rm", "list": "ls", "cp": "put"}


class UpdlGroup(_GlobalOptions, click.Group):
    """Turns any exception from a command into one ``updl: error:`` line and an exit code."""

    command_class = UpdlCommand

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Click's lookup, plus a pointer to the updl name for ``upload``/``download``/``delete``/``list``."""
        name = click.utils.make_str(args[0]) if args else None
        if name in ALIASES and self.get_command(ctx, name) is None:
            ctx.fail(f"no such command {name!r}; did you mean 'updl {ALIASES[name]}'?")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        env = _options_of(ctx).env
        try:
            result = super().invoke(ctx)
            env.stdout_now().flush()  # now, so a closed pipe is noticed here rather than at exit
            return result
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            _stdout_closed(env)
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the CLI's last line of defence
            options = ctx.find_object(Options)
            debug = (options.debug if options else False) or os.environ.get("UPDL_DEBUG") == "1"
            described = describe(exc)
            code, message = (
                described
                if described
                else (ExitCode.FAILURE, f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)")
            )
            if debug:
                traceback.print_exception(exc, file=env.stderr_now())
            click.echo(f"updl: error: {message}", file=env.stderr, err=True)
            raise click.exceptions.Exit(int(code)) from None


def _stdout_closed(env: Environment) -> NoReturn:
    """The reader of stdout went away (``updl ls | head -1``): stop quietly, as coreutils do.

    Python's advice ("Note on SIGPIPE" in the signal docs): point stdout at devnull so the
    interpreter's final flush does not fail again. Exit 141 (128 + SIGPIPE) is the status a shell
    shows for ``cat`` killed the same way; restoring SIG_DFL instead would also kill updl on a
    server socket's EPIPE.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, env.stdout_now().fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor behind stdout (a test's buffer)
        pass
    raise click.exceptions.Exit(int(ExitCode.BROKEN_PIPE))


@click.group(cls=UpdlGroup, epilog=epilog(), context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="updl")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Integrity-first file transfer: every upload and download is MD5-verified.

    Settings come from flags, then UPDL_URL / UPDL_TOKEN / UPDL_PROFILE, then
    the config file (UPDL_CONFIG, or config.toml in the user config dir,
    one [profile] table each with url, token, retries, timeout, ca_bundle), then defaults.
    The global options (--url, --token, --profile, --ca-bundle, --json, --quiet, --debug)
    go before or after the command.
    """
    options = _options_of(ctx)
    if os.environ.get("UPDL_DEBUG") == "1" and not options.debug:
        options.debug = True
        _enable_debug(options.env)


pass_options = click.make_pass_decorator(Options)


class _WarningLines(logging.Handler):
    """The SDK's warnings (e.g. a damaged resume store it ignores) as ``updl: warning:`` lines."""

    def __init__(self, env: Environment) -> None:
        super().__init__(logging.WARNING)
        self._env = env

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"updl: warning: {record.getMessage()}", file=self._env.stderr, err=True)


def _show_sdk_warnings(show: bool, env: Environment) -> None:
    """(Re)attach the warning handler for this invocation: one per process, none when quiet."""
    logger = logging.getLogger("updl")
    for handler in [h for h in logger.handlers if isinstance(h, _WarningLines)]:
        logger.removeHandler(handler)
    if show:
        logger.addHandler(_WarningLines(env))


class SizeType(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.2
    """A byte count: plain bytes or with a suffix (64MiB, 500M)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """Parse with the SDK's ``parse_size``."""
        try:
            return parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class DurationType(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.2
    """A duration: seconds, or with a suffix (90m, 12h, 14d, 2w)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """Parse with the SDK's ``parse_duration`` (seconds)."""
        if isinstance(value, int):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


retries_option = click.option(
    "--retries", type=click.IntRange(min=0), metavar="N", help="Retries after the first attempt [default: config or 3]."
)


jobs_option = click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 32),
    default=1,
    show_default=True,
    metavar="N",
    help="Transfer N files at once.",
)
no_files_option = click.option(
    "--if-no-files",
    type=click.Choice(["fail", "warn", "ignore"]),
    default="fail",
    show_default=True,
    help="When nothing matches: fail (exit 7), warn, or ignore.",
)
include_option = click.option(
    "--include", multiple=True, metavar="PATTERN", help="Only files whose relative path matches (fnmatch; repeatable)."
)


def exclude_option(note: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--exclude PATTERN`` (repeatable); ``note`` ends its help (what exclusion also means there)."""
    return click.option(
        "--exclude",
        multiple=True,
        metavar="PATTERN",
        help=f"Leave out files whose relative path matches (fnmatch; repeatable){note}.",
    )


no_preserve_option = click.option(
    "--no-preserve",
    is_flag=True,
    help="Neither record (upload) nor restore (download) the files' permission bits and mtime.",
)
