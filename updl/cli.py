"""The ``updl`` command: parse, resolve settings, call the SDK, render, map errors to exit codes.

Never builds an HTTP request: everything on the wire goes through
:class:`updl.sdk.Client`.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn, TextIO

import click
from rich.console import Console

from .console import PlainView, QuietView, RichView, TransferView, files_table, info_lines, json_line, totals_line
from .exitcodes import ExitCode, describe, epilog
from .reporting import BatchReport
from .sdk.batch import Outcome, Task, raise_for_outcomes
from .sdk.batch_download import download_batch, plan_downloads, plan_named_downloads
from .sdk.batch_upload import plan_uploads, unselected_outcomes, upload_batch
from .sdk.client import Client
from .sdk.config import load_settings, parse_size
from .sdk.errors import ConfigWarning, UpdlError
from .sdk.manifest import Entry, VerifyResult, read_manifest, verify_manifest, write_manifest
from .sdk.models import FileInfo, Prefix
from .sdk.retry import RetryEvent
from .sdk.selection import Unselected, has_magic, join_prefix, normalize_prefix, select_files
from .sdk.version import __version__

__all__ = ["Environment", "cli", "main"]


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
    retries: int | None = None  # put's/get's --retries, over the settings: for every request they send
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


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--name", metavar="NAME", help="Name to store under (one FILE only; required for '-').")
@click.option(
    "-r",
    "--recursive",
    is_flag=True,
    help="Upload the files below each DIR, stored as DIR's name + path inside (like cp -r).",
)
@click.option(
    "-L",
    "--follow-symlinks",
    is_flag=True,
    help="Follow symlinks found below DIRs and by globs (default: skip and report them; "
    "a FILE or DIR named as an argument is always followed).",
)
@click.option("--prefix", metavar="PREFIX", help="Store below PREFIX/ ('/' is added if missing).")
@click.option(
    "--include", multiple=True, metavar="PATTERN", help="Only files whose relative path matches (fnmatch; repeatable)."
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="PATTERN",
    help="Leave out files whose relative path matches (fnmatch; repeatable).",
)
@click.option("--dry-run", is_flag=True, help="List what would be uploaded; contact no server.")
@click.option(
    "--skip-existing",
    is_flag=True,
    help="Hash each file first; skip it when the server has that name with the same MD5.",
)
@click.option(
    "--no-clobber",
    is_flag=True,
    help="Create only: refuse (exit 9, nothing stored) a file whose name already exists on the server.",
)
@click.option(
    "--if-match",
    metavar="MD5",
    help="Replace only the version with this MD5 (one FILE; exit 9 if the server has another or none).",
)
@click.option("--manifest", metavar="FILE", help="Write a checksum manifest (md5sum/sha256sum -c format).")
@click.option(
    "--manifest-format",
    type=click.Choice(["md5", "sha256"]),
    default="md5",
    show_default=True,
    help="Digest of the manifest.",
)
@jobs_option
@no_files_option
@retries_option
@click.option(
    "--resumable-threshold",
    type=SizeType(),
    metavar="SIZE",
    help="Files this big or bigger go in resumable chunks (tus); a rerun after an "
    "interruption continues where it stopped. 0: always [default: config or 64MiB].",
)
@pass_options
def put(
    options: Options,
    files: tuple[str, ...],
    name: str | None,
    recursive: bool,
    prefix: str | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    dry_run: bool,
    skip_existing: bool,
    no_clobber: bool,
    if_match: str | None,
    manifest: str | None,
    manifest_format: str,
    jobs: int,
    if_no_files: str,
    retries: int | None,
    resumable_threshold: int | None,
    follow_symlinks: bool,
) -> None:
    """Upload FILE(s), directories (-r) and globs ('dist/*.whl', 'build/**/*.tgz', expanded by updl).

    A FILE is stored under its base name, a DIR (with -r) under DIR's name,
    a glob match under its path relative to the current directory; all below
    --prefix. A failed file does not stop the others; every outcome is
    reported and the exit code says what happened. FILE may be '-' for
    standard input (with --name).
    """
    options.resumable_threshold = resumable_threshold
    options.retries = retries
    if name is not None and (len(files) > 1 or recursive or has_magic(files[0])):
        raise click.UsageError("--name works with one FILE only")
    if if_match is not None and (len(files) > 1 or recursive or has_magic(files[0])):
        raise click.UsageError("--if-match works with one FILE only")
    if if_match is not None and not re.fullmatch(r"[0-9a-fA-F]{32}", if_match.strip('"')):
        raise click.BadParameter("expected an MD5 of 32 hex digits", param_hint="--if-match")
    if if_match is not None and no_clobber:
        raise click.UsageError(
            "--no-clobber and --if-match exclude each other (a file cannot be both new and a version)"
        )
    conditions = {"no_clobber": no_clobber, "if_match": if_match}
    if "-" in files:
        if name is None or len(files) > 1:
            raise click.UsageError("uploading standard input ('-') needs --name and no other FILE")
        if manifest or skip_existing or dry_run:
            raise click.UsageError(
                "standard input ('-') cannot be combined with --manifest, --skip-existing or --dry-run"
            )
    report = options.report("uploaded", 1)
    if files == ("-",):
        _put_stdin(options, report, join_prefix(prefix, name or "-"), retries, conditions)
        return
    unselected: list[Unselected] = []  # symlinks not followed (skipped), missing FILEs (failed)
    selected = select_files(
        files,
        recursive=recursive,
        include=include,
        exclude=exclude,
        ignore=[manifest] if manifest else [],
        follow_symlinks=follow_symlinks,
        on_unselected=unselected.append,
    )
    if name is not None:
        selected = [replace(selected[0], relative=name)] if selected else []
        unselected = [replace(u, relative=name) for u in unselected]
    tasks = plan_uploads(selected, prefix)
    decided = unselected_outcomes(unselected, prefix)
    report.files = len(tasks) + len(decided)
    failed = [o for o in decided if o.failed]
    if dry_run or not tasks:  # before any client exists: not even a connection is made
        for outcome in decided:
            report.outcome(outcome)
        if tasks:
            report.dry_run(tasks)
        elif failed:
            report.summary(decided)
        else:
            report.no_files(if_no_files, " ".join(files), decided)
        raise_for_outcomes(failed)
        return
    client = options.client()
    view = report.view
    try:
        view.plan(len(tasks), sum(t.size or 0 for t in tasks))
        for outcome in decided:
            report.outcome(outcome)
        outcomes = decided + upload_batch(
            client,
            tasks,
            jobs=jobs,
            skip_existing=skip_existing,
            algorithms=(manifest_format,) if manifest else (),
            retries=retries,
            on_start=lambda task: view.begin(task.name, "uploading"),
            on_progress=view.progress,
            on_retry=view.retry,
            on_outcome=report.outcome,
            upload_options=conditions,
        )
        stored = [o for o in outcomes if o.status in ("uploaded", "skipped")]
        if manifest:
            write_manifest(manifest, [Entry(o.digests[manifest_format], o.task.relative) for o in stored])
            view.note(f"wrote {manifest} ({len(stored)} files, {manifest_format})")
    finally:
        view.close()  # the bars finish drawing before the summary line below them
    report.summary(outcomes)
    raise_for_outcomes(outcomes)


def _put_stdin(
    options: Options, report: BatchReport, name: str, retries: int | None, conditions: dict[str, Any]
) -> None:
    """``put - --name NAME``: one upload from standard input, reported like any batch."""
    view = report.view
    started = options.env.clock()
    task = Task(name, Path("-"), name)
    try:
        view.begin(name, "uploading")
        try:
            info = options.client().upload(
                options.env.stdin_now().buffer,
                name,
                on_progress=view.progress,
                on_retry=view.retry,
                retries=retries,
                **conditions,
            )
        except (UpdlError, OSError) as error:  # reported like a batch's failed file, then raised
            outcome = Outcome(
                task,
                "failed",
                attempts=getattr(error, "attempts", 1),
                seconds=options.env.clock() - started,
                error=error,
            )
        else:
            outcome = Outcome(
                replace(task, size=info.size),
                "uploaded",
                size=info.size,
                md5=info.md5,
                attempts=1,
                seconds=options.env.clock() - started,
                info=info,
            )
        report.outcome(outcome)
    finally:
        view.close()
    report.summary([outcome])
    raise_for_outcomes([outcome])


@cli.command()
@click.argument("names", metavar="[NAME]...", nargs=-1)
@click.option(
    "-o",
    "--output",
    metavar="PATH",
    help="Where to write: a file, a directory (gets the base name; a trailing '/' means a "
    "directory, created if missing), or '-' for stdout [default: ./<base name of NAME>]; "
    "with several NAMEs or --prefix, the directory to fill, created if missing "
    "[default: .].",
)
@click.option(
    "--prefix",
    metavar="PREFIX",
    help="Download every file below PREFIX/, recreating the paths below it in the -o directory.",
)
@click.option(
    "--manifest",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="With --prefix: fetch exactly the files FILE lists (paths below the prefix) and "
    "check each against its digest too.",
)
@jobs_option
@no_files_option
@retries_option
@pass_options
def get(
    options: Options,
    names: tuple[str, ...],
    output: str | None,
    prefix: str | None,
    manifest: str | None,
    jobs: int,
    if_no_files: str,
    retries: int | None,
) -> None:
    """Download NAME(s), or everything below --prefix; files appear only once their MD5 is verified.

    Several NAMEs go into the -o directory (default: the current one), each under its
    base name, --jobs at a time.
    """
    if bool(names) == (prefix is not None):
        raise click.UsageError("give either NAME(s) or --prefix PREFIX")
    options.retries = retries
    if manifest and prefix is None:
        raise click.UsageError("--manifest needs --prefix")
    if prefix is not None:
        _get_prefix(options, prefix, Path(output or "."), manifest, jobs, if_no_files, retries)
        return
    if len(names) > 1:
        _get_names(options, names, Path(output or "."), jobs, retries)
        return
    name = names[0]
    if output == "-":
        _get_stdout(options, name, retries)
        return
    basename = name.rsplit("/", 1)[-1]
    dest = Path(output) if output else Path(basename)
    if output is not None and output.endswith(("/", os.sep)):
        dest.mkdir(parents=True, exist_ok=True)  # a trailing slash means a directory, as in cp and rsync
    if dest.is_dir():
        dest = dest / basename
    # One file is a batch of one: the same result line, --json record and summary as any batch.
    _download_all(options.client(), options.report("downloaded", 1), [Task(name, dest, basename)], [], 1, retries)


def _get_stdout(options: Options, name: str, retries: int | None) -> None:
    """``get NAME -o -``: the bytes on stdout, so no result line or record can go there."""
    if options.json:
        raise click.UsageError("--json cannot be combined with -o -")
    view = options.view()
    try:
        view.begin(name, "downloading")
        info = options.client().download(
            name, options.env.stdout_now().buffer, on_progress=view.progress, on_retry=view.retry, retries=retries
        )
        view.done(info, "downloaded", "stdout")
    finally:
        view.close()


def _get_names(options: Options, names: tuple[str, ...], out_dir: Path, jobs: int, retries: int | None) -> None:
    """``get NAME NAME...``: each into ``out_dir/<base name>``, reported like any batch."""
    out_dir.mkdir(parents=True, exist_ok=True)  # with several NAMEs -o can only be a directory
    client = options.client()
    tasks, decided = plan_named_downloads(client, names, out_dir)
    report = options.report("downloaded", len(names))
    _download_all(client, report, tasks, decided, jobs, retries)


def _get_prefix(
    options: Options, prefix: str, out_dir: Path, manifest: str | None, jobs: int, if_no_files: str, retries: int | None
) -> None:
    """``get --prefix``: every file below the prefix (or those the manifest lists) into ``out_dir``."""
    entries = read_manifest(manifest) if manifest else None
    client = options.client()
    tasks, decided = plan_downloads(client.iter_files(normalize_prefix(prefix) or None), prefix, out_dir, entries)
    report = options.report("downloaded", len(tasks) + len(decided))
    if not tasks and not decided:
        report.no_files(if_no_files, f"nothing on the server below {normalize_prefix(prefix)!r}")
        return
    _download_all(client, report, tasks, decided, jobs, retries)


def _download_all(
    client: Client, report: BatchReport, tasks: list[Task], decided: list[Outcome], jobs: int, retries: int | None
) -> None:
    """Run a planned download batch: report the outcomes decided without fetching, fetch the rest
    ``jobs`` at a time, then the summary and the batch's exit code."""
    view = report.view
    try:
        view.plan(len(tasks), sum(t.size or 0 for t in tasks))
        for outcome in decided:
            report.outcome(outcome)
        outcomes = decided + download_batch(
            client,
            tasks,
            jobs=jobs,
            retries=retries,
            on_start=lambda task: view.begin(task.name, "downloading"),
            on_progress=view.progress,
            on_retry=view.retry,
            on_outcome=report.outcome,
        )
    finally:
        view.close()
    report.summary(outcomes)
    raise_for_outcomes(outcomes)


@cli.command()
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option(
    "-C", "--directory", metavar="DIR", default=".", show_default=True, help="Where the manifest's paths start."
)
@pass_options
def verify(options: Options, manifest: str, directory: str) -> None:
    """Check local files against MANIFEST (md5sum/sha256sum format; the digest length tells which).

    Prints 'PATH: OK', 'PATH: FAILED' or 'PATH: MISSING' per file (OK lines
    are left out with --quiet). Exit 5 if any FAILED, else 4 if any MISSING.
    """

    def show(result: VerifyResult) -> None:
        if options.json:
            options.emit(
                {
                    "path": result.entry.path,
                    "status": result.status,
                    "algorithm": result.entry.algorithm,
                    "expected": result.entry.digest,
                    "actual": result.actual,
                }
            )
        elif result.status != "OK" or not options.quiet:
            click.echo(f"{result.entry.path}: {result.status}", file=options.env.stdout)

    verify_manifest(manifest, directory, on_result=show)


SORT_KEYS: dict[str, Callable[[FileInfo | Prefix], Any]] = {
    "name": lambda e: e.name,
    "size": lambda e: (e.size if isinstance(e, FileInfo) else -1, e.name),
    "time": lambda e: (e.created.timestamp() if isinstance(e, FileInfo) else float("-inf"), e.name),
}


@cli.command(name="ls")
@click.argument("prefix", required=False)
@click.option(
    "-F",
    "--folders",
    is_flag=True,
    help="Folder-style: list the files directly below PREFIX and each folder (NAME/) once, as 'aws s3 ls' does.",
)
@click.option(
    "-r", "--recursive", is_flag=True, help="Every file below PREFIX, at any depth (the default; undoes --folders)."
)
@click.option("-l", "--long", "long_", is_flag=True, help="Size, MD5 and creation time (the table always has them).")
@click.option(
    "--sort",
    type=click.Choice(sorted(SORT_KEYS)),
    default="name",
    show_default=True,
    help="Order of the table (folders first when by size or time).",
)
@click.option("--reverse", is_flag=True, help="Reverse the order.")
@pass_options
def list_files(
    options: Options, prefix: str | None, folders: bool, recursive: bool, long_: bool, sort: str, reverse: bool
) -> None:
    """List your files (those whose names start with PREFIX, if given), then a totals line.

    Without --folders every file below PREFIX is listed, at any depth (as in
    earlier versions, so scripts keep working); with --folders, names with a
    further '/' are rolled up into their folder.
    """
    client = options.client()
    delimiter = "/" if folders and not recursive else None
    entries = client.iter_entries(prefix, delimiter)
    if options.json and sort == "name" and not reverse:
        for entry in entries:  # streamed: one page in memory at a time
            options.emit(entry.to_json())
        return
    listed = sorted(entries, key=SORT_KEYS[sort], reverse=reverse)
    if options.json:
        for entry in listed:
            options.emit(entry.to_json())
        return
    if not listed:
        if not options.quiet:
            click.echo(
                "updl: no files" + (f" starting with {prefix!r}" if prefix else ""), file=options.env.stderr, err=True
            )
        return
    stdout = options.env.stdout_now()
    # A log or pipe has no width: size the table to its content rather than wrap at 80 columns.
    width = None if stdout.isatty() else 200 + max(len(e.name) for e in listed)
    Console(file=stdout, width=width, highlight=False).print(files_table(listed))
    files = [e for e in listed if isinstance(e, FileInfo)]
    if not options.quiet:
        totals = totals_line(len(files), sum(f.size for f in files), len(listed) - len(files) if delimiter else None)
        click.echo(totals, file=stdout)


@cli.command()
@click.argument("prefix", required=False)
@pass_options
def du(options: Options, prefix: str | None) -> None:
    """Total size and number of your files whose names start with PREFIX (all, if not given).

    Counted by the server in one request, however many files there are.
    """
    result = options.client().usage(prefix)
    if options.json:
        options.emit(result.to_json())
        return
    where = f" under {prefix}" if prefix else ""
    click.echo(f"{totals_line(result.files, result.bytes)}{where}", file=options.env.stdout)


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
            click.echo(line, file=options.env.stdout)


@cli.command()
@click.argument("names", nargs=-1, required=True)
@pass_options
def rm(options: Options, names: tuple[str, ...]) -> None:
    """Delete NAME(s). Stops at the first failure."""
    client = options.client()
    for name in names:
        client.delete(name)
        if options.json:
            options.emit({"name": name, "deleted": True})
        elif not options.quiet:
            click.echo(f"deleted {name}", file=options.env.stdout)  # a result: stdout


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="updl")
    except BrokenPipeError:  # raised outside a command, e.g. by the final flush of --help output
        try:
            _stdout_closed(Environment())
        except click.exceptions.Exit as exit_:
            sys.exit(exit_.exit_code)
