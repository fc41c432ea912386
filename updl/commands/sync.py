"""``updl sync SRC DST``: a local directory and ``remote:PREFIX``, either way, moving only what differs."""

from __future__ import annotations

from pathlib import Path

import click

from ..console import human_size
from ..reporting import BatchReport, message_of
from ..sdk.batch import Outcome, raise_for_outcomes
from ..sdk.sync import SyncPlan, deletions_refused, plan_download_sync, plan_upload_sync, run_sync
from .base import (
    Options,
    cli,
    exclude_option,
    include_option,
    jobs_option,
    no_preserve_option,
    pass_options,
    retries_option,
)

#: How a sync argument names the server side: ``remote:build/42/``.
REMOTE = "remote:"


def _remote(argument: str) -> str | None:
    """The prefix of a ``remote:PREFIX`` argument, or None for a local path."""
    return argument[len(REMOTE) :] if argument.startswith(REMOTE) else None


@cli.command()
@click.argument("source")
@click.argument("destination")
@click.option(
    "--delete",
    is_flag=True,
    help="Also delete the destination's files that SOURCE does not have (after the transfers, "
    "only if none failed). More than 100, or more than 10 and 10% of the destination, "
    "needs --force (exit 12 without).",
)
@click.option("--force", is_flag=True, help="Allow --delete to delete any number of files.")
@click.option("--dry-run", is_flag=True, help="List what would be transferred and deleted; change nothing.")
@include_option
@exclude_option("; never deleted either")
@click.option(
    "-L", "--follow-symlinks", is_flag=True, help="Follow symlinks below a local SOURCE (default: skip and report)."
)
@jobs_option
@retries_option
@no_preserve_option
@pass_options
def sync(
    options: Options,
    source: str,
    destination: str,
    delete: bool,
    force: bool,
    dry_run: bool,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    follow_symlinks: bool,
    jobs: int,
    retries: int | None,
    no_preserve: bool,
) -> None:
    """Make DESTINATION hold what SOURCE holds: one is a local directory, the other remote:PREFIX.

    \b
      updl sync ./dist remote:build/42/      upload what differs
      updl sync remote:build/42/ ./out       download what differs

    A file is sent only when its content differs: the sizes, or else the local
    MD5 and the one the server verified (never the mtime). Unchanged files are
    counted in the summary (and listed with --json, status skipped). Downloads
    restore the recorded mode and mtime unless --no-preserve. A local
    directory named like 'remote:x' is written './remote:x'.
    """
    prefix_up, prefix_down = _remote(destination), _remote(source)
    if (prefix_up is None) == (prefix_down is None):
        raise click.UsageError("one of SOURCE and DESTINATION must be remote:PREFIX and the other a local directory")
    if force and not delete:
        raise click.UsageError("--force only matters with --delete")
    options.retries = retries
    if prefix_up is not None:
        if not Path(source).is_dir():
            raise click.BadParameter(f"{source} is not a directory", param_hint="SOURCE")
        client = options.client()
        plan = plan_upload_sync(
            client, source, prefix_up, include=include, exclude=exclude, follow_symlinks=follow_symlinks, jobs=jobs
        )
    else:
        if Path(destination).exists() and not Path(destination).is_dir():
            raise click.BadParameter(f"{destination} is not a directory", param_hint="DESTINATION")
        client = options.client()
        plan = plan_download_sync(client, prefix_down, destination, include=include, exclude=exclude, jobs=jobs)
    deletions = plan.deletions if delete else []
    files = len(plan.transfers) + len(plan.unchanged) + len(plan.decided) + len(deletions)
    report = options.report(plan.verb, files)
    if dry_run:
        _dry_run(options, report, plan, delete, force)
        return
    if deletions and (force or not deletions_refused(len(deletions), plan.destination_files)):
        _announce(options, deletions_of(plan))  # listed before any is deleted (a refusal raises in run_sync)
    if not plan.upload and plan.transfers:
        plan.directory.mkdir(parents=True, exist_ok=True)
    verb = "uploading" if plan.upload else "downloading"
    view = report.view

    def on_outcome(outcome: Outcome) -> None:
        if outcome.status == "deleted":
            if options.json:
                report.emit(outcome.to_json(message_of))
            report.result(f"deleted {outcome.task.name}")
        elif outcome.status == "skipped" and (outcome.reason or "").startswith("unchanged") and not options.json:
            return  # a sync of a large tree that changed little would print mostly this
        else:
            report.outcome(outcome)

    try:
        view.plan(len(plan.transfers), sum(t.size or 0 for t in plan.transfers))
        outcomes = run_sync(
            client,
            plan,
            delete=delete,
            force=force,
            jobs=jobs,
            retries=retries,
            preserve=not no_preserve,
            on_start=lambda task: view.begin(task.name, verb),
            on_progress=view.progress,
            on_retry=view.retry,
            on_outcome=on_outcome,
        )
    finally:
        view.close()
    report.summary(outcomes)
    raise_for_outcomes(outcomes)


def deletions_of(plan: SyncPlan) -> list[str]:
    """What the deletions are called for the user: remote names, or local paths."""
    return [t.name if plan.upload else str(t.path) for t in plan.deletions]


def _announce(options: Options, names: list[str]) -> None:
    """List the deletions before any happens (stderr: it is a warning, not a result)."""
    if options.quiet or options.json:
        return
    stderr = options.env.stderr_now()
    click.echo(f"updl: will delete {len(names)} files the source does not have:", file=stderr, err=True)
    for name in names:
        click.echo(f"  {name}", file=stderr, err=True)


def _dry_run(options: Options, report: BatchReport, plan: SyncPlan, delete: bool, force: bool) -> None:
    """What the sync would do, file by file, and a summary; nothing changes."""
    action = plan.verb[:-2]  # upload, download
    for task in plan.transfers:
        if options.json:
            report.emit({"name": task.name, "path": str(task.path), "size": task.size, "status": "planned"})
        else:
            pair = f"{task.path} -> {task.name}" if plan.upload else f"{task.name} -> {task.path}"
            report.result(f"would {action} {pair} ({human_size(task.size)})")
    for outcome in plan.decided:
        report.outcome(outcome)
    if options.json:
        for outcome in plan.unchanged:
            report.emit(outcome.to_json(message_of))
    deletions = deletions_of(plan) if delete else []
    for task, name in zip(plan.deletions, deletions, strict=False):
        if options.json:
            report.emit({"name": task.name, "path": str(task.path), "size": task.size, "status": "would delete"})
        else:
            report.result(f"would delete {name}")
    refused = bool(deletions) and not force and deletions_refused(len(deletions), plan.destination_files)
    total = sum(t.size or 0 for t in plan.transfers)
    if options.json:
        summary = {
            "planned": len(plan.transfers),
            "unchanged": len(plan.unchanged),
            "deletions": len(deletions),
            "bytes": total,
            "dry_run": True,
        }
        report.emit({"summary": {**summary, "deletions_refused": refused}})
        return
    if refused:
        click.echo(
            f"updl: warning: deleting {len(deletions)} of {plan.destination_files} files needs --force",
            file=options.env.stderr_now(),
            err=True,
        )
    report.result(
        f"dry run: would {action} {len(plan.transfers)} files ({human_size(total)}), delete {len(deletions)}, "
        f"{len(plan.unchanged)} unchanged; nothing was changed"
    )
