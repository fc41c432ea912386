"""``updl-server token ...`` and ``updl-server user ...``: the operator's account commands.

They work on the database directly (like ``add-user``), beside a running
server: every server process reads tokens and users on each request, so a
revocation or a disabled user takes effect at once everywhere.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from .access import FULL, parse_duration, parse_scopes, prefix_problem
from .accounts import Accounts, TokenRecord
from .auth import issue_token
from .catalog import Catalog, utcnow
from .cli import StorageType, _is_new, _open_catalog, _where, data_dir_option, db_url_option, main
from .config import S3Location, ServerConfig
from .formats import isoformat
from .storage import open_store


def _catalog(data_dir: Path, db_url: str | None) -> Catalog:
    """The existing catalog of the data dir; fails rather than create an empty one."""
    if _is_new(data_dir, db_url):
        raise click.ClickException(
            f"no database in {data_dir.resolve()}: no server has used it; pass the server's "
            "--data-dir (or UPDL_SERVER_DATA_DIR)"
        )
    return _open_catalog(data_dir, db_url)


def _shown(moment: datetime | None) -> str:
    """A catalog time for a table: to the second, or ``-``."""
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def _scopes_option(value: str) -> tuple[str, ...]:
    try:
        return parse_scopes(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.group()
def token() -> None:
    """Create, list and revoke tokens (scoped, optionally limited to a name prefix, optionally expiring)."""


@token.command("create")
@click.argument("user")
@click.option("--scopes", default=FULL, show_default=True, help="Comma-separated: read, write, delete.")
@click.option("--prefix", default=None, help="Limit the token to names starting with this.")
@click.option("--expires", default=None, metavar="DURATION", help="Expire after e.g. 30d, 12h, 2w. Default: never.")
@click.option("--label", default=None, help="A note to tell tokens apart in 'token list'.")
@data_dir_option()
@db_url_option()
def token_create(
    user: str,
    scopes: str,
    prefix: str | None,
    expires: str | None,
    label: str | None,
    data_dir: Path,
    db_url: str | None,
) -> None:
    """Print a new token for USER (alone on stdout: the secret is shown only this once)."""
    wanted = _scopes_option(scopes)
    problem = None if prefix is None else prefix_problem(prefix)
    if problem is not None:
        raise click.BadParameter(f"invalid prefix {prefix!r}: {problem}", param_hint="--prefix")
    try:
        until = None if expires is None else utcnow() + parse_duration(expires)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from None
    catalog = _catalog(data_dir, db_url)
    user_id = catalog.user_id(user)
    if user_id is None:
        raise click.ClickException(f"no user {user!r}; run 'updl-server add-user {user}' to create it")
    text, token_id = issue_token(catalog, user_id, scopes=wanted, prefix=prefix, label=label, expires=until)
    click.echo(text)
    click.echo(
        f"updl-server: token {token_id} for user {user!r} ({','.join(wanted)}"
        f"{f', prefix {prefix!r}' if prefix else ''}{f', expires {isoformat(until)}' if until else ''}) "
        f"in {_where(data_dir, db_url)}",
        err=True,
    )


@token.command("list")
@click.argument("user", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per token, one a line.")
@data_dir_option()
@db_url_option()
def token_list(user: str | None, as_json: bool, data_dir: Path, db_url: str | None) -> None:
    """List the tokens (of USER): id, user, scopes, prefix, times; never a secret."""
    catalog = _catalog(data_dir, db_url)
    user_id = None
    if user is not None:
        user_id = catalog.user_id(user)
        if user_id is None:
            raise click.ClickException(f"no user {user!r}")
    records = Accounts(catalog).tokens(user_id)
    if as_json:
        for record in records:
            click.echo(json.dumps(record.to_json()))
        return
    header = ("ID", "USER", "SCOPES", "PREFIX", "CREATED", "LAST USED", "EXPIRES", "REVOKED", "LABEL")
    _table([header, *(_token_row(r) for r in records)])


def _table(rows: list[tuple[str, ...]]) -> None:
    """Print ``rows`` (the first is the header) in aligned columns."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _token_row(record: TokenRecord) -> tuple[str, ...]:
    return (
        record.id,
        record.user,
        ",".join(record.scopes),
        record.prefix if record.prefix is not None else "-",
        _shown(record.created),
        _shown(record.last_used),
        _shown(record.expires),
        _shown(record.revoked),
        record.label or "",
    )


@token.command("revoke")
@click.argument("token_id")
@data_dir_option()
@db_url_option()
def token_revoke(token_id: str, data_dir: Path, db_url: str | None) -> None:
    """Revoke token TOKEN_ID (the 16 hex digits after 'updl_'): refused from the next request on."""
    if not Accounts(_catalog(data_dir, db_url)).revoke_token(token_id, utcnow()):
        raise click.ClickException(f"no token {token_id!r}; 'updl-server token list' shows them")
    click.echo(f"updl-server: revoked token {token_id}", err=True)


@main.group()
def user() -> None:
    """List, disable, enable and delete users (``add-user`` creates them)."""


@user.command("list")
@data_dir_option()
@db_url_option()
def user_list(data_dir: Path, db_url: str | None) -> None:
    """List users: name, created, last login, disabled, live tokens, files and bytes."""
    records = Accounts(_catalog(data_dir, db_url)).users()
    header = ("USER", "CREATED", "LAST LOGIN", "DISABLED", "TOKENS", "FILES", "BYTES")
    rows = [
        header,
        *(
            (
                r.name,
                _shown(r.created),
                _shown(r.last_login),
                _shown(r.disabled),
                str(r.tokens),
                str(r.files),
                str(r.bytes),
            )
            for r in records
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _set_disabled(name: str, disabled: bool, data_dir: Path, db_url: str | None) -> None:
    if not Accounts(_catalog(data_dir, db_url)).set_disabled(name, utcnow() if disabled else None):
        raise click.ClickException(f"no user {name!r}")
    click.echo(f"updl-server: {'disabled' if disabled else 'enabled'} user {name!r}", err=True)


@user.command("disable")
@click.argument("name")
@data_dir_option()
@db_url_option()
def user_disable(name: str, data_dir: Path, db_url: str | None) -> None:
    """Disable user NAME: its tokens get 401 until 'user enable'; its files stay."""
    _set_disabled(name, True, data_dir, db_url)


@user.command("enable")
@click.argument("name")
@data_dir_option()
@db_url_option()
def user_enable(name: str, data_dir: Path, db_url: str | None) -> None:
    """Enable user NAME again."""
    _set_disabled(name, False, data_dir, db_url)


@user.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--storage",
    type=StorageType(),
    default=None,
    envvar="UPDL_SERVER_STORAGE",
    show_envvar=True,
    help="The server's --storage, so the user's blobs are deleted too (default: local).",
)
@click.option("--s3-endpoint-url", default=None, envvar="UPDL_SERVER_S3_ENDPOINT_URL", show_envvar=True)
@data_dir_option()
@db_url_option()
def user_delete(
    name: str, yes: bool, storage: S3Location | None, s3_endpoint_url: str | None, data_dir: Path, db_url: str | None
) -> None:
    """Delete user NAME with all its files (their contents too), uploads and tokens."""
    catalog = _catalog(data_dir, db_url)
    found = next((u for u in Accounts(catalog).users() if u.name == name), None)
    if found is None:
        raise click.ClickException(f"no user {name!r}")
    if not yes:
        click.confirm(
            f"delete user {name!r}, its {found.files} file(s) ({found.bytes} bytes) and its tokens?",
            abort=True,
            err=True,
        )
    locations = Accounts(catalog).delete_user(name) or []
    # After the rows are gone: a reader never finds a row without a blob.
    store = open_store(ServerConfig(data_dir=data_dir, db_url=db_url, s3=storage, s3_endpoint_url=s3_endpoint_url))
    try:
        for location in locations:
            store.delete(location)
    finally:
        store.close()
    click.echo(f"updl-server: deleted user {name!r} and {found.files} file(s)", err=True)
