"""``updl-server quota`` and ``updl-server sweep``: per-user limits and the expired-file sweep by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from . import quotas
from .catalog import Catalog
from .cli import (
    DurationType,
    SizeType,
    StorageType,
    _is_new,
    _open_catalog,
    _where,
    data_dir_option,
    db_url_option,
    main,
)
from .config import S3Location, ServerConfig
from .retention import sweep_expired
from .storage import open_store

NONE = "none"


class Unlimited(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.2
    """``none`` (remove the limit) or a value of ``inner``."""

    def __init__(self, inner: click.ParamType) -> None:  # type: ignore[type-arg]
        self.inner = inner
        self.name = f"{inner.name}|none"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """``None`` for ``none``, else ``inner``'s value."""
        if value is quotas.UNSET:
            return value
        if isinstance(value, str) and value.strip().lower() == NONE:
            return None
        return self.inner.convert(value, param, ctx)


def _user(catalog: Catalog, name: str) -> int:
    user_id = catalog.user_id(name)
    if user_id is None:
        raise click.ClickException(f"no user {name!r}; run 'updl-server add-user {name}' to create it")
    return user_id


def _shown(value: int | None, unit: str = "") -> str:
    return "unlimited" if value is None else f"{value}{unit}"


@main.command()
@click.argument("user")
@click.option(
    "--bytes",
    "max_bytes",
    type=Unlimited(SizeType()),
    default=quotas.UNSET,
    help="Bytes USER may store (e.g. 10G), or 'none'.",
)
@click.option(
    "--files",
    "max_files",
    type=Unlimited(click.IntRange(0)),
    default=quotas.UNSET,
    help="Files USER may store, or 'none'.",
)
@click.option(
    "--retention",
    type=Unlimited(DurationType()),
    default=quotas.UNSET,
    help="Keep USER's uploads this long (e.g. 14d) unless an upload says otherwise; 'none': the server's default.",
)
@data_dir_option()
@db_url_option()
def quota(user: str, max_bytes: Any, max_files: Any, retention: Any, data_dir: Path, db_url: str | None) -> None:
    """Show USER's limits and usage, or change them (only the options given)."""
    if _is_new(data_dir, db_url):
        raise click.ClickException(
            f"no database in {data_dir.resolve()}: pass the server's --data-dir (or UPDL_SERVER_DATA_DIR)"
        )
    catalog = _open_catalog(data_dir, db_url)
    try:
        user_id = _user(catalog, user)
        if any(v is not quotas.UNSET for v in (max_bytes, max_files, retention)):
            limits = quotas.set_limits(
                catalog, user_id, max_bytes=max_bytes, max_files=max_files, retention_seconds=retention
            )
            click.echo(f"updl-server: changed the limits of user {user!r} in {_where(data_dir, db_url)}", err=True)
        else:
            limits = quotas.limits_of(catalog, user_id)
        files, total = catalog.usage(user_id)
    finally:
        catalog.close()
    click.echo(f"user:      {user}")
    click.echo(f"bytes:     {total} of {_shown(limits.max_bytes)}")
    click.echo(f"files:     {files} of {_shown(limits.max_files)}")
    retention_text = "server default" if limits.retention_seconds is None else f"{limits.retention_seconds}s"
    click.echo(f"retention: {retention_text}")


@main.command()
@data_dir_option()
@db_url_option()
@click.option(
    "--storage", type=StorageType(), default=None, envvar="UPDL_SERVER_STORAGE", show_envvar=True, help="As for 'run'."
)
@click.option(
    "--s3-endpoint-url", default=None, envvar="UPDL_SERVER_S3_ENDPOINT_URL", show_envvar=True, help="As for 'run'."
)
def sweep(data_dir: Path, db_url: str | None, storage: S3Location | None, s3_endpoint_url: str | None) -> None:
    """Delete expired files now (rows, then blobs); safe beside running servers."""
    if _is_new(data_dir, db_url):
        raise click.ClickException(f"no database in {data_dir.resolve()}: pass the server's --data-dir")
    catalog = _open_catalog(data_dir, db_url)
    store = open_store(ServerConfig(data_dir=data_dir, db_url=db_url, s3=storage, s3_endpoint_url=s3_endpoint_url))
    try:
        removed = sweep_expired(catalog, store)
    finally:
        store.close()
        catalog.close()
    click.echo(f"updl-server: swept {removed} expired file(s) from {_where(data_dir, db_url)}", err=True)
    click.echo(removed)
