"""``updl ls``, ``updl du``, ``updl info`` and ``updl rm``: look at and remove stored files."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from ..console import files_table, info_lines, quota_lines, totals_line
from ..sdk.models import FileInfo, Prefix
from .base import DurationType, Options, cli, pass_options

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
    for line in quota_lines(result):
        click.echo(line, file=options.env.stdout)


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
@click.argument("names", nargs=-1)
@click.option("--prefix", metavar="PREFIX", help="Delete every file whose name starts with PREFIX (instead of NAMEs).")
@click.option(
    "--older-than",
    type=DurationType(),
    metavar="DURATION",
    help="With --prefix: only files created more than DURATION ago (e.g. 30d).",
)
@click.option("--dry-run", is_flag=True, help="With --prefix: list what would be deleted, delete nothing.")
@pass_options
def rm(options: Options, names: tuple[str, ...], prefix: str | None, older_than: int | None, dry_run: bool) -> None:
    """Delete NAME(s), or with --prefix every file below PREFIX (--older-than: only old ones).

    Stops at the first failure. --prefix alone deletes the whole prefix; the
    count is printed at the end (--dry-run first to see it).
    """
    client = options.client()
    if prefix is not None or older_than is not None or dry_run:
        if names or not prefix:
            raise click.UsageError("--prefix PREFIX (not empty) replaces NAMEs; --older-than and --dry-run need it")
        _rm_prefix(options, prefix, older_than, dry_run)
        return
    if not names:
        raise click.UsageError("give NAME(s) to delete, or --prefix PREFIX")
    for name in names:
        client.delete(name)
        if options.json:
            options.emit({"name": name, "deleted": True})
        elif not options.quiet:
            click.echo(f"deleted {name}", file=options.env.stdout)  # a result: stdout


def _rm_prefix(options: Options, prefix: str, older_than: int | None, dry_run: bool) -> None:
    """``rm --prefix``: each file as it is deleted (or would be), then the count and size."""
    verb = "would delete" if dry_run else "deleted"

    def on_removed(info: FileInfo) -> None:
        if options.json:
            options.emit({**info.to_json(), "deleted": not dry_run, "dry_run": dry_run})
        elif not options.quiet:
            click.echo(f"{verb} {info.name}", file=options.env.stdout)

    removed = options.client().remove_prefix(prefix, older_than=older_than, dry_run=dry_run, on_removed=on_removed)
    if not options.json and not options.quiet:
        age = f" older than {older_than}s" if older_than is not None else ""
        total = totals_line(len(removed), sum(f.size for f in removed))
        click.echo(f"updl: {verb} {total} under {prefix}{age}", file=options.env.stderr, err=True)
