"""``updl share NAME``, ``updl shares`` and ``updl unshare ID``: links that download one file without a token."""

from __future__ import annotations

from datetime import datetime

import click
from rich.console import Console
from rich.table import Table

from ..sdk.models import format_time
from ..sdk.shares import ShareLink
from .base import DurationType, Options, cli, pass_options


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else format_time(moment.replace(microsecond=0))


@cli.command()
@click.argument("name")
@click.option(
    "--expires",
    type=DurationType(),
    required=True,
    metavar="DURATION",
    help="How long the link works (e.g. 1h, 7d; at most 30d).",
)
@click.option("--max-downloads", type=click.IntRange(min=1), default=None, help="Stop after this many downloads.")
@pass_options
def share(options: Options, name: str, expires: int, max_downloads: int | None) -> None:
    """Print a URL that downloads NAME without a token (alone on stdout, shown only this once)."""
    link = options.client().share(name, expires, max_downloads=max_downloads)
    if options.json:
        options.emit(link.to_json())
    else:
        click.echo(link.url, file=options.env.stdout)


@cli.command()
@pass_options
def shares(options: Options) -> None:
    """List your share links: id, name, created, expiry, downloads (of the limit), revoked."""
    links = options.client().list_shares()
    if options.json:
        for link in links:
            options.emit(link.to_json())
        return
    out = options.env.stdout_now()
    Console(file=out, width=None if out.isatty() else 200).print(_table(links))


def _table(links: list[ShareLink]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("id", "name", "created", "expires", "downloads", "revoked"):
        table.add_column(column.upper(), no_wrap=True)
    for link in links:
        limit = "" if link.max_downloads is None else f"/{link.max_downloads}"
        table.add_row(
            link.id,
            link.name,
            _when(link.created),
            _when(link.expires),
            f"{link.downloads}{limit}",
            _when(link.revoked),
        )
    return table


@cli.command()
@click.argument("share_id")
@pass_options
def unshare(options: Options, share_id: str) -> None:
    """Revoke share link SHARE_ID (from 'updl shares'): its URL answers 410 from now on."""
    options.client().revoke_share(share_id)
    if options.json:
        options.emit({"id": share_id, "revoked": True})
    elif not options.quiet:
        click.echo(f"revoked share link {share_id}", file=options.env.stdout)
