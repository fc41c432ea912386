"""The ``updl-server`` command: run the server and manage users and tokens."""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click
import uvicorn

from . import audit
from .app import create_app
from .auth import mint_token
from .catalog import Catalog, UserExistsError
from .config import (
    DEFAULT_MAX_SIZE,
    ConnectionLimits,
    S3Location,
    ServerConfig,
    parse_origin,
    parse_size,
    parse_storage,
)
from .connections import fit_descriptors, guarded_protocol
from .metrics import prepare_multiprocess_dir
from .names import user_name_problem
from .retention import DEFAULT_SWEEP_INTERVAL, parse_duration
from .workers import MAX_WORKERS, serve_forked, usable_cpus

F = TypeVar("F", bound=Callable[..., Any])
LOG_LEVELS = ["critical", "error", "warning", "info", "debug"]
# Sockets closed by a graceful shutdown can wait this long for in-flight requests.
GRACEFUL_SHUTDOWN_SECONDS = 10
LIMITS = ConnectionLimits()  # the defaults
SECONDS = click.FloatRange(min=0, min_open=True)
MIN_METRICS_TOKEN = 16


class StartupError(click.ClickException):
    """A setting found unusable before listening: one ``Error:`` line and exit 2, as for a bad flag."""

    exit_code = 2


class SizeType(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.2
    """A byte count with an optional decimal (K, M, G) or binary (KiB, MiB, GiB) suffix."""

    name = "size"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """Parse ``value`` with ``parse_size``."""
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class WorkersType(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.2
    """``auto`` (the CPUs this process may run on) or a count from 1 to ``MAX_WORKERS``."""

    name = "auto|N"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """Resolve ``auto`` now; check a count's range."""
        if isinstance(value, int):
            count = value
        elif str(value).strip().lower() == "auto":
            return usable_cpus()
        else:
            try:
                count = int(str(value))
            except ValueError:
                self.fail(f"expected 'auto' or a number of workers, not {value!r}", param, ctx)
        if not 1 <= count <= MAX_WORKERS:
            self.fail(f"workers must be 1 to {MAX_WORKERS} (or auto), not {count}", param, ctx)
        return count


class DurationType(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.2
    """A duration: seconds, or a number with s, m, h, d or w."""

    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """Parse ``value`` with ``parse_duration``."""
        if isinstance(value, int):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class StorageType(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.2
    """``local`` or ``s3://BUCKET/PREFIX``."""

    name = "storage"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> S3Location | None:
        """Parse ``value`` with ``parse_storage``."""
        if value is None or isinstance(value, S3Location):
            return value
        try:
            return parse_storage(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class OriginType(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.2
    """A browser origin for CORS: ``scheme://host[:port]``, or ``*``."""

    name = "origin"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """Parse ``value`` with ``parse_origin``."""
        try:
            return parse_origin(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def data_dir_option() -> Callable[[F], F]:
    """``--data-dir``, shared by every command."""
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("updl-data"),
        envvar="UPDL_SERVER_DATA_DIR",
        show_default=True,
        show_envvar=True,
        help="Where the database and blobs live (created if missing).",
    )


def audit_log_option() -> Callable[[F], F]:
    """``--audit-log``, shared by the commands that change state."""
    return click.option(
        "--audit-log",
        default=None,
        metavar="FILE",
        envvar="UPDL_SERVER_AUDIT_LOG",
        show_envvar=True,
        help="Append one JSON line per state change (uploads, deletes, users, tokens) to FILE; "
        "'-' for standard error. Default: none.",
    )


def db_url_option() -> Callable[[F], F]:
    """``--db-url``, shared by every command."""
    return click.option(
        "--db-url",
        default=None,
        envvar="UPDL_SERVER_DB_URL",
        show_envvar=True,
        help="SQLAlchemy database URL. Default: SQLite file DATA_DIR/updl.db.",
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="updl-server")
def main() -> None:
    """updl reference server: MD5-verified uploads and downloads over HTTP."""


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    envvar="UPDL_SERVER_HOST",
    show_default=True,
    show_envvar=True,
    help="Address to listen on.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    envvar="UPDL_SERVER_PORT",
    show_default=True,
    show_envvar=True,
    help="Port to listen on (0: any free port).",
)
@data_dir_option()
@db_url_option()
@click.option(
    "--max-size",
    type=SizeType(),
    default=DEFAULT_MAX_SIZE,
    envvar="UPDL_SERVER_MAX_SIZE",
    show_envvar=True,
    help="Largest accepted file: bytes, or a suffix: K/M/G/T are powers of 1000, "
    "KiB/MiB/GiB/TiB powers of 1024.  [default: 10GiB]",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="info",
    envvar="UPDL_SERVER_LOG_LEVEL",
    show_default=True,
    show_envvar=True,
    help="Log verbosity; the access log is on at 'info' and 'debug' only.",
)
@click.option(
    "--workers",
    type=WorkersType(),
    default="1",
    envvar="UPDL_SERVER_WORKERS",
    show_default=True,
    show_envvar=True,
    help="Worker processes serving the port (each its own event loop); auto: one per CPU this "
    "process may use. More workers move more uploads per minute but, on 2 cores, a worse p95 "
    "(docs/scaling.md has the figures).",
)
@click.option(
    "--storage",
    type=StorageType(),
    default=None,
    envvar="UPDL_SERVER_STORAGE",
    show_envvar=True,
    help="Where file contents live: 'local' (DATA_DIR/blobs, the default) or "
    "s3://BUCKET/PREFIX (needs 'updl-server[s3]'; credentials and region from "
    "boto3's usual environment and config files).",
)
@click.option(
    "--s3-endpoint-url",
    default=None,
    envvar="UPDL_SERVER_S3_ENDPOINT_URL",
    show_envvar=True,
    help="Endpoint of an S3-compatible store (MinIO, Ceph, ...).",
)
@click.option(
    "--s3-presign-downloads/--no-s3-presign-downloads",
    default=False,
    envvar="UPDL_SERVER_S3_PRESIGN_DOWNLOADS",
    show_envvar=True,
    help="Answer downloads with a 307 redirect to a presigned S3 URL.",
)
@click.option(
    "--max-header-size",
    type=SizeType(),
    default=LIMITS.max_header_size,
    envvar="UPDL_SERVER_MAX_HEADER_SIZE",
    show_envvar=True,
    help="Largest request line plus headers; larger ones get 431.  [default: 64KiB]",
)
@click.option(
    "--header-timeout",
    type=SECONDS,
    default=LIMITS.header_timeout,
    metavar="SECONDS",
    envvar="UPDL_SERVER_HEADER_TIMEOUT",
    show_default=True,
    show_envvar=True,
    help="Time a client has to send a request line and headers, from connecting "
    "(or from the request's first byte on a kept-alive connection); then 408.",
)
@click.option(
    "--body-timeout",
    type=SECONDS,
    default=LIMITS.body_timeout,
    metavar="SECONDS",
    envvar="UPDL_SERVER_BODY_TIMEOUT",
    show_default=True,
    show_envvar=True,
    help="Time a request body may go without a byte; then 408, the partial upload "
    "is discarded and a resumable one released for its client to resume.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    default=LIMITS.max_connections,
    metavar="N",
    envvar="UPDL_SERVER_MAX_CONNECTIONS",
    show_default=True,
    show_envvar=True,
    help="Open connections per worker process; requests beyond get 503, and "
    "connections beyond twice this number are closed at once.",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    type=OriginType(),
    multiple=True,
    metavar="ORIGIN",
    envvar="UPDL_SERVER_CORS_ORIGIN",
    show_envvar=True,
    help="Let pages on ORIGIN (http(s)://HOST[:PORT], or * for any) call the API from "
    "a browser (CORS); repeat for several (the variable: separated by spaces). "
    "Default: none. The page the server serves itself at / needs none.",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    envvar="UPDL_SERVER_TLS_CERT",
    show_envvar=True,
    help="Serve HTTPS with this PEM certificate (chain: the server's first, then intermediates); "
    "needs --tls-key. Default: plain HTTP.",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    envvar="UPDL_SERVER_TLS_KEY",
    show_envvar=True,
    help="The PEM private key of --tls-cert (unencrypted).",
)
@click.option(
    "--default-retention",
    type=DurationType(),
    default=None,
    metavar="DURATION",
    envvar="UPDL_SERVER_DEFAULT_RETENTION",
    show_envvar=True,
    help="Delete files this long after upload (e.g. 30d) unless the upload or the user's quota "
    "says otherwise. Default: keep until deleted.",
)
@click.option(
    "--sweep-interval",
    type=SECONDS,
    default=DEFAULT_SWEEP_INTERVAL,
    metavar="SECONDS",
    envvar="UPDL_SERVER_SWEEP_INTERVAL",
    show_default=True,
    show_envvar=True,
    help="How often each worker deletes the blobs of expired files (they vanish from the API at once).",
)
@click.option(
    "--metrics-token",
    default=None,
    metavar="SECRET",
    envvar="UPDL_SERVER_METRICS_TOKEN",
    show_envvar=True,
    help="Serve Prometheus metrics at GET /metrics to requests bearing this secret "
    f"(at least {MIN_METRICS_TOKEN} characters; not a user's token; prefer the variable, "
    "which `ps` does not show). Default: metrics off.",
)
@click.option(
    "--metrics-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    envvar="UPDL_SERVER_METRICS_DIR",
    show_envvar=True,
    help="With --workers N and metrics: where the workers' metrics meet, emptied at start "
    "(only this server may use it). Default: a temporary directory removed at exit.",
)
@audit_log_option()
def run(
    host: str,
    port: int,
    data_dir: Path,
    db_url: str | None,
    max_size: int,
    log_level: str,
    workers: int,
    storage: S3Location | None,
    s3_endpoint_url: str | None,
    s3_presign_downloads: bool,
    max_header_size: int,
    header_timeout: float,
    body_timeout: float,
    max_connections: int,
    cors_origins: tuple[str, ...],
    tls_cert: Path | None,
    tls_key: Path | None,
    default_retention: int | None,
    sweep_interval: float,
    metrics_token: str | None,
    metrics_dir: Path | None,
    audit_log: str | None,
) -> None:
    """Serve the API until interrupted."""
    _check_tls(tls_cert, tls_key)
    _check_audit_log(audit_log)
    if metrics_token is not None and len(metrics_token) < MIN_METRICS_TOKEN:
        raise StartupError(f"--metrics-token must be at least {MIN_METRICS_TOKEN} characters (a random secret)")
    if storage is None and (s3_endpoint_url or s3_presign_downloads):
        raise click.UsageError("--s3-endpoint-url and --s3-presign-downloads need --storage s3://BUCKET/PREFIX")
    if storage is not None:
        try:
            import boto3  # noqa: F401 - only to fail early with advice
        except ImportError:
            raise click.ClickException(
                "S3 storage needs boto3: in a checkout of the updl repository, run pip install './server[s3]'"
            ) from None
    config = ServerConfig(
        data_dir=data_dir,
        db_url=db_url,
        max_size=max_size,
        host=host,
        port=port,
        log_level=log_level.lower(),
        s3=storage,
        s3_endpoint_url=s3_endpoint_url,
        s3_presign_downloads=s3_presign_downloads,
        cors_origins=tuple(dict.fromkeys(cors_origins)),
        default_retention=default_retention,
        sweep_interval=sweep_interval,
        audit_log=audit_log,
        metrics_token=metrics_token,
    )
    logging.basicConfig(level=config.log_level.upper(), format="%(levelname)s: %(message)s")
    config = replace(
        config,
        limits=fit_descriptors(
            ConnectionLimits(  # may warn: after logging
                max_header_size, header_timeout, body_timeout, max_connections
            )
        ),
    )
    # Bind here, not in uvicorn, to learn the real port of "--port 0" and announce it. Several
    # workers each listen on a socket of their own on that port (SO_REUSEPORT: the kernel spreads
    # new connections evenly; one shared socket lets a busy worker grab more than its share).
    sock = _bind(host, port, reuse_port=workers > 1)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    scheme = "https" if tls_cert else "http"

    def announce() -> None:
        print(f"updl-server listening on {scheme}://{shown_host}:{bound_port}", file=sys.stderr, flush=True)

    def serve(listener: socket.socket, settings: ServerConfig = config) -> None:
        # Built per process: each worker needs its own DB pool and blob-store temp dir.
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings),
                loop="auto",
                http=guarded_protocol(config.limits),
                lifespan="on",
                log_level=config.log_level,
                access_log=config.log_level in ("info", "debug"),
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
                # Each worker loads the pair into its own SSL context (checked once above).
                ssl_certfile=tls_cert,
                ssl_keyfile=tls_key,
            )
        )
        server.run(sockets=[listener])

    if workers == 1:
        sock.listen(BACKLOG)
        announce()
        serve(sock)
        return
    with _metrics_meeting_place(metrics_token is not None, metrics_dir) as meeting:
        shared = replace(config, metrics_dir=meeting)
        status = serve_forked(
            lambda listener: serve(listener, shared),
            lambda: _listen(host, bound_port, reuse_port=True),
            workers,
            announce,
        )
    sock.close()  # held (bound, never listening) so that no one else took the port meanwhile
    sys.exit(status)


@main.command("add-user")
@click.argument("name")
@data_dir_option()
@db_url_option()
@audit_log_option()
def add_user(name: str, data_dir: Path, db_url: str | None, audit_log: str | None) -> None:
    """Create user NAME and print a token for it (alone on stdout; where it was stored on stderr)."""
    problem = user_name_problem(name)
    if problem is not None:
        raise click.ClickException(f"invalid user name {name!r}: {problem}")
    new = _is_new(data_dir, db_url)
    _open_audit_log(audit_log)
    catalog = _open_catalog(data_dir, db_url)
    try:
        user_id = catalog.add_user(name)
    except UserExistsError:
        raise click.ClickException(
            f"user {name!r} already exists; run 'updl-server new-token {name}' for another token"
        ) from None
    audit.record("user.created", user_id=user_id, user=name, via="updl-server add-user")
    click.echo(_issue_token(catalog, user_id, "updl-server add-user"))
    where = _where(data_dir, db_url)
    if new:
        # A new data dir is right the first time and wrong when run from another directory: say
        # which, so a token the server then refuses is not a mystery.
        click.echo(
            f"updl-server: warning: {where} had no database: created a new one for user "
            f"{name!r}; the token works only with a server run with --data-dir "
            f"{data_dir.resolve()}",
            err=True,
        )
    else:
        click.echo(f"updl-server: added user {name!r} to {where}", err=True)


@main.command("new-token")
@click.argument("name")
@data_dir_option()
@db_url_option()
@audit_log_option()
def new_token(name: str, data_dir: Path, db_url: str | None, audit_log: str | None) -> None:
    """Print another token for existing user NAME (older tokens stay valid)."""
    if _is_new(data_dir, db_url):  # no user can be there: do not leave an empty data dir behind
        raise click.ClickException(
            f"no database in {data_dir.resolve()}: no server has used it; pass the server's "
            "--data-dir (or UPDL_SERVER_DATA_DIR)"
        )
    _open_audit_log(audit_log)
    catalog = _open_catalog(data_dir, db_url)
    user_id = catalog.user_id(name)
    if user_id is None:
        raise click.ClickException(f"no user {name!r}; run 'updl-server add-user {name}' to create it")
    click.echo(_issue_token(catalog, user_id, "updl-server new-token"))
    click.echo(f"updl-server: new token for user {name!r} in {_where(data_dir, db_url)}", err=True)


@contextmanager
def _metrics_meeting_place(enabled: bool, chosen: Path | None) -> Iterator[Path | None]:
    """The directory several workers' metrics meet in (emptied now), or ``None`` without metrics.

    Made before forking, so every worker counts into it from its first request.
    """
    if not enabled:
        yield None
        return
    if chosen is not None:
        prepare_multiprocess_dir(chosen)
        yield chosen
        return
    with tempfile.TemporaryDirectory(prefix="updl-metrics-") as made:
        yield Path(made)


def _open_audit_log(destination: str | None) -> None:
    """An admin command's audit log (one line appended per change), or a one-line error."""
    try:
        audit.configure(destination)
    except OSError as exc:
        raise click.ClickException(f"cannot open --audit-log {destination}: {exc.strerror}") from None


def _check_audit_log(destination: str | None) -> None:
    """Fail before listening if the audit log cannot be opened for appending."""
    if destination is None or destination == audit.STDERR:
        return
    try:
        audit.configure(destination)
    except OSError as exc:
        raise StartupError(f"cannot open --audit-log {destination}: {exc.strerror}") from None
    finally:
        audit.configure(None)


def _is_new(data_dir: Path, db_url: str | None) -> bool:
    """Whether the SQLite database of ``data_dir`` does not exist yet (a ``--db-url`` is never new)."""
    return db_url is None and not (data_dir / "updl.db").exists()


def _where(data_dir: Path, db_url: str | None) -> str:
    """The data dir, or the database URL without its password, for messages."""
    if db_url is None:
        return f"data dir {data_dir.resolve()}"
    from sqlalchemy.engine import make_url

    return f"database {make_url(db_url).render_as_string(hide_password=True)}"


def _open_catalog(data_dir: Path, db_url: str | None) -> Catalog:
    """The catalog of a data dir, with tables created (the server may never have run)."""
    config = ServerConfig(data_dir=data_dir, db_url=db_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(config.database_url)
    catalog.create_tables()
    return catalog


def _issue_token(catalog: Catalog, user_id: int, via: str) -> str:
    """Mint a token, store its hash, and return the text to hand to the user."""
    token = mint_token()
    catalog.add_token(user_id, token.token_id, token.secret_hash)
    audit.record("token.created", user_id=user_id, token_id=token.token_id, via=via)
    return token.text


def _check_tls(cert: Path | None, key: Path | None) -> None:
    """Fail before listening, in one line, if the certificate and key cannot serve TLS.

    uvicorn would only find out in each worker, with a traceback, after the
    listening line was printed.
    """
    if cert is None and key is None:
        return
    if cert is None or key is None:
        raise StartupError("--tls-cert and --tls-key go together: pass both (or neither, for plain HTTP)")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise StartupError(f"cannot read {flag} {path}: {exc.strerror}") from None
    try:  # the certificate alone first, to say which of the two files is wrong
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=cert)
    except ssl.SSLError:
        raise StartupError(f"--tls-cert {cert} is not a PEM certificate") from None
    try:
        # An empty password: an encrypted key fails here rather than prompting on a terminal.
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise StartupError(f"--tls-key {key} is not the private key of --tls-cert {cert}") from None
        raise StartupError(
            f"cannot use --tls-cert {cert} with --tls-key {key}: the key must be an unencrypted PEM "
            "private key and the certificate file start with the server's own certificate"
        ) from None


BACKLOG = 2048


def _bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port``, not listening yet (IPv6 if ``host`` is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


def _listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket on ``host:port``."""
    sock = _bind(host, port, reuse_port=reuse_port)
    sock.listen(BACKLOG)
    return sock


# The account commands (token ..., user ...) and ``quota``/``sweep`` register themselves on
# ``main``; imported last because they build on the options and helpers above.
from . import admin, quota_commands  # noqa: E402, F401
