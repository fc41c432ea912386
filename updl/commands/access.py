"""``updl whoami``, ``updl login`` and ``updl token create|list|revoke``: the token and its account."""

from __future__ import annotations

import os
from datetime import datetime

import click
from rich.console import Console
from rich.table import Table

from ..console import human_size, totals_line
from ..sdk.access import SCOPES, TokenInfo, WhoAmI
from ..sdk.client import Client
from ..sdk.config import DEFAULT_PROFILE, config_file, load_settings
from ..sdk.models import format_time
from ..sdk.profiles import has_profile, save_profile
from .base import Options, UpdlCommand, _GlobalOptions, cli, pass_options


def _when(moment: datetime | None, empty: str = "never") -> str:
    return empty if moment is None else format_time(moment.replace(microsecond=0))


def whoami_lines(me: WhoAmI) -> list[str]:
    """The ``whoami`` fields, one per line."""
    usage = totals_line(me.files, me.bytes)
    if me.quota_bytes is not None or me.quota_files is not None:
        limits = []
        if me.quota_bytes is not None:
            limits.append(f"{human_size(me.quota_bytes)} ({me.quota_bytes} bytes)")
        if me.quota_files is not None:
            limits.append(f"{me.quota_files} files")
        usage += f" of a quota of {' and '.join(limits)}"
    lines = [
        f"user:    {me.user}",
        f"token:   {me.token_id}" + (f" ({me.label})" if me.label else ""),
        f"scopes:  {','.join(me.scopes)}",
        f"prefix:  {me.prefix if me.prefix is not None else '(any name)'}",
        f"expires: {_when(me.expires)}",
        f"usage:   {usage}",
    ]
    return lines


@cli.command()
@pass_options
def whoami(options: Options) -> None:
    """Show whose the token is, what it may do (scopes, prefix, expiry) and the account's usage."""
    me = options.client().whoami()
    if options.json:
        options.emit(me.to_json())
        return
    for line in whoami_lines(me):
        click.echo(line, file=options.env.stdout)


@cli.command()
@pass_options
def login(options: Options) -> None:
    """Check a token against the server and save it, with the URL, as a profile of the config file.

    Takes --url, --token and --profile (default: 'default'); without --token
    (or UPDL_TOKEN) it asks for the token without echoing it. The config file
    keeps its comments and other profiles, and is made readable by you only (0600).
    """
    environ = {k: v for k, v in os.environ.items() if k != "UPDL_PROFILE"}
    profile = options.profile or os.environ.get("UPDL_PROFILE") or DEFAULT_PROFILE
    path, _ = config_file(environ)
    token = options.token or environ.get("UPDL_TOKEN")
    if not token:
        token = click.prompt("token", hide_input=True, err=True).strip()
    # An existing profile lends its settings (url, ca_bundle, timeout); a new one starts from
    # flags, environment and defaults alone.
    settings = load_settings(
        options.url,
        token,
        profile if has_profile(path, profile) else None,
        ca_bundle=options.ca_bundle,
        environ=environ,
        config_path=path if has_profile(path, profile) else os.devnull,
    )
    with Client(settings=settings, sleep=options.env.sleep) as client:
        me = client.whoami()
    values = {"url": settings.url, "token": token}
    if settings.ca_bundle is not None and settings.ca_bundle_source in ("flag", "environment (UPDL_CA_BUNDLE)"):
        values["ca_bundle"] = settings.ca_bundle
    save_profile(path, profile, values)
    if options.json:
        options.emit({"profile": profile, "config": str(path), "url": settings.url, **me.to_json()})
        return
    if not options.quiet:
        click.echo(
            f"logged in to {settings.url} as {me.user} (scopes {','.join(me.scopes)}"
            f"{f', prefix {me.prefix!r}' if me.prefix is not None else ''}); "
            f"saved as profile [{profile}] in {path}",
            file=options.env.stderr,
            err=True,
        )


class TokenGroup(_GlobalOptions, click.Group):
    """``updl token ...``: the global options work here too; errors are mapped by the root group."""

    command_class = UpdlCommand


@cli.group(cls=TokenGroup)
def token() -> None:
    """Create, list and revoke your tokens (a token can create only tokens with no more power than itself)."""


def _scope_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    wanted = [part.strip().lower() for part in value.split(",") if part.strip()]
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise click.BadParameter(f"scopes are {', '.join(SCOPES)}, comma-separated; got {value!r}")
    return wanted


@token.command("create")
@click.option("--scopes", default=None, help="Comma-separated: read, write, delete. Default: this token's own.")
@click.option("--prefix", default=None, help="Only names starting with this. Default: this token's own.")
@click.option("--expires", default=None, metavar="DURATION", help="Expire after e.g. 30d, 12h, 2w.")
@click.option("--label", default=None, help="A note to tell tokens apart in 'updl token list'.")
@pass_options
def token_create(
    options: Options, scopes: str | None, prefix: str | None, expires: str | None, label: str | None
) -> None:
    """Print a new token (alone on stdout: it is shown only this once)."""
    made = options.client().create_token(_scope_list(scopes), prefix=prefix, expires_in=expires, label=label)
    if options.json:
        options.emit({"token": made.secret, **made.info.to_json()})
        return
    click.echo(made.secret, file=options.env.stdout)
    if not options.quiet:
        info = made.info
        click.echo(
            f"updl: created token {info.id} ({','.join(info.scopes)}"
            f"{f', prefix {info.prefix!r}' if info.prefix is not None else ''}, expires {_when(info.expires)})",
            file=options.env.stderr,
            err=True,
        )


@token.command("list")
@pass_options
def token_list(options: Options) -> None:
    """List your tokens: id, scopes, prefix, created, last used, expiry, revoked (never a secret)."""
    tokens = options.client().list_tokens()
    if options.json:
        for info in tokens:
            options.emit(info.to_json())
        return
    Console(file=options.env.stdout_now(), width=None if options.env.stdout_now().isatty() else 200).print(
        _tokens_table(tokens)
    )


def _tokens_table(tokens: list[TokenInfo]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("id", "scopes", "prefix", "created", "last used", "expires", "revoked", "label"):
        table.add_column(column.upper(), no_wrap=True)
    for t in tokens:
        table.add_row(
            t.id,
            ",".join(t.scopes),
            t.prefix if t.prefix is not None else "-",
            _when(t.created),
            _when(t.last_used),
            _when(t.expires),
            _when(t.revoked, "-"),
            t.label or "",
        )
    return table


@token.command("revoke")
@click.argument("token_id")
@pass_options
def token_revoke(options: Options, token_id: str) -> None:
    """Revoke token TOKEN_ID (from 'updl token list'): refused from the next request on."""
    options.client().revoke_token(token_id)
    if options.json:
        options.emit({"id": token_id, "revoked": True})
    elif not options.quiet:
        click.echo(f"revoked token {token_id}", file=options.env.stdout)
