"""``updl put``, ``updl get`` and ``updl verify``: move files and prove them."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from ..reporting import BatchReport
from ..sdk.batch import Outcome, Task, raise_for_outcomes
from ..sdk.batch_download import download_batch, plan_downloads, plan_named_downloads
from ..sdk.batch_upload import plan_uploads, unselected_outcomes, upload_batch
from ..sdk.client import Client
from ..sdk.config import MAX_DOWNLOAD_CONNECTIONS
from ..sdk.errors import UpdlError
from ..sdk.manifest import Entry, VerifyResult, read_manifest, verify_manifest, write_manifest
from ..sdk.selection import Unselected, has_magic, join_prefix, normalize_prefix, select_files
from .base import (
    DurationType,
    Options,
    SizeType,
    cli,
    exclude_option,
    include_option,
    jobs_option,
    no_files_option,
    no_preserve_option,
    pass_options,
    retries_option,
)

checksum_option = click.option(
    "--checksum",
    type=click.Choice(["md5", "sha256"]),
    help="Digest to claim and check besides the transfer's MD5: sha256 has the server verify the "
    "file's SHA-256 on upload, and a download check it on disk [default: config or md5].",
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
@include_option
@exclude_option()
@click.option("--dry-run", is_flag=True, help="List what would be uploaded; contact no server.")
@click.option(
    "--expires",
    type=DurationType(),
    metavar="DURATION",
    help="Have the server delete the file(s) this long after upload (e.g. 14d, 12h) "
    "[default: your or the server's retention, if any].",
)
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
@click.option(
    "--no-dedup",
    is_flag=True,
    help="Always send the bytes: do not offer files of 1 MiB or more by content first "
    "(by default a file whose content the server already holds for you is linked, not sent).",
)
@checksum_option
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
@click.option(
    "--parts",
    type=click.IntRange(1, 8),
    envvar="UPDL_PARALLEL_PARTS",
    help="Send each resumable file as N parallel parts that the server joins (tus "
    "concatenation), each part resumable [default: config parallel_parts or 1].",
)
@no_preserve_option
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
    expires: int | None,
    skip_existing: bool,
    no_clobber: bool,
    if_match: str | None,
    manifest: str | None,
    manifest_format: str,
    jobs: int,
    if_no_files: str,
    retries: int | None,
    resumable_threshold: int | None,
    parts: int | None,
    follow_symlinks: bool,
    no_preserve: bool,
    no_dedup: bool,
    checksum: str | None,
) -> None:
    """Upload FILE(s), directories (-r) and globs ('dist/*.whl', 'build/**/*.tgz', expanded by updl).

    A FILE is stored under its base name, a DIR (with -r) under DIR's name,
    a glob match under its path relative to the current directory; all below
    --prefix. A failed file does not stop the others; every outcome is
    reported and the exit code says what happened. FILE may be '-' for
    standard input (with --name).
    """
    options.resumable_threshold = resumable_threshold
    options.parallel_parts = parts
    options.retries = retries
    options.checksum = checksum
    if no_dedup:
        options.dedup = False
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
    conditions = {"no_clobber": no_clobber, "if_match": if_match, "expires_in": expires, "preserve": not no_preserve}
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
            dedup=client.settings.dedup,
        )
        stored = [o for o in outcomes if o.status in ("uploaded", "skipped", "linked")]
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
@checksum_option
@jobs_option
@no_files_option
@retries_option
@click.option(
    "--connections",
    type=click.IntRange(1, MAX_DOWNLOAD_CONNECTIONS),
    metavar="N",
    help="Fetch a file of 64 MiB or more over N ranged connections at once (1: one stream) "
    "[default: config download_connections or 4].",
)
@no_preserve_option
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
    connections: int | None,
    no_preserve: bool,
    checksum: str | None,
) -> None:
    """Download NAME(s), or everything below --prefix; files appear only once their MD5 is verified.

    Several NAMEs go into the -o directory (default: the current one), each under its
    base name, --jobs at a time. Each file gets the permission bits (through your
    umask) and mtime recorded at upload, unless --no-preserve.
    """
    preserve = not no_preserve
    if bool(names) == (prefix is not None):
        raise click.UsageError("give either NAME(s) or --prefix PREFIX")
    options.retries = retries
    options.connections = connections
    options.checksum = checksum
    if manifest and prefix is None:
        raise click.UsageError("--manifest needs --prefix")
    if prefix is not None:
        _get_prefix(options, prefix, Path(output or "."), manifest, jobs, if_no_files, retries, preserve)
        return
    if len(names) > 1:
        _get_names(options, names, Path(output or "."), jobs, retries, preserve)
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
    report = options.report("downloaded", 1)
    _download_all(options.client(), report, [Task(name, dest, basename)], [], 1, retries, preserve)


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


def _get_names(
    options: Options, names: tuple[str, ...], out_dir: Path, jobs: int, retries: int | None, preserve: bool
) -> None:
    """``get NAME NAME...``: each into ``out_dir/<base name>``, reported like any batch."""
    out_dir.mkdir(parents=True, exist_ok=True)  # with several NAMEs -o can only be a directory
    client = options.client()
    tasks, decided = plan_named_downloads(client, names, out_dir)
    report = options.report("downloaded", len(names))
    _download_all(client, report, tasks, decided, jobs, retries, preserve)


def _get_prefix(
    options: Options,
    prefix: str,
    out_dir: Path,
    manifest: str | None,
    jobs: int,
    if_no_files: str,
    retries: int | None,
    preserve: bool,
) -> None:
    """``get --prefix``: every file below the prefix (or those the manifest lists) into ``out_dir``."""
    entries = read_manifest(manifest) if manifest else None
    client = options.client()
    tasks, decided = plan_downloads(client.iter_files(normalize_prefix(prefix) or None), prefix, out_dir, entries)
    report = options.report("downloaded", len(tasks) + len(decided))
    if not tasks and not decided:
        report.no_files(if_no_files, f"nothing on the server below {normalize_prefix(prefix)!r}")
        return
    _download_all(client, report, tasks, decided, jobs, retries, preserve)


def _download_all(
    client: Client,
    report: BatchReport,
    tasks: list[Task],
    decided: list[Outcome],
    jobs: int,
    retries: int | None,
    preserve: bool = True,
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
            preserve=preserve,
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
@click.option(
    "--checksum",
    type=click.Choice(["md5", "sha256"]),
    help="Require MANIFEST to list this digest (refuse one of the other kind) [default: either].",
)
@pass_options
def verify(options: Options, manifest: str, directory: str, checksum: str | None) -> None:
    """Check local files against MANIFEST (md5sum/sha256sum format; the digest length tells which).

    Prints 'PATH: OK', 'PATH: FAILED' or 'PATH: MISSING' per file (OK lines
    are left out with --quiet). Exit 5 if any FAILED, else 4 if any MISSING.
    """
    if checksum is not None:
        other = sorted({e.algorithm for e in read_manifest(manifest)} - {checksum})
        if other:
            raise click.UsageError(f"{manifest} lists {', '.join(other)} digests, not {checksum} (--checksum)")

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
