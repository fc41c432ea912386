"""The ASGI application: thin routes over the catalog, the blob store and the upload pipeline."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from . import __version__, audit, metrics, quotas
from .access import DELETE, READ, WRITE
from .account_routes import account_routes
from .attributes import MODE_HEADER, MTIME_HEADER, Attributes, format_mode, format_mtime
from .catalog import Catalog, FileRecord, utcnow
from .config import ServerConfig
from .dedup import link_by_content
from .downloads import (
    etag,
    file_headers,
    head_response,
    reader_bounds,
    stream_response,
    wanted_range,
)
from .errors import HTTPError, bad_request, insufficient_storage, no_such_file, out_of_space
from .formats import isoformat
from .names import MAX_NAME_BYTES, Utf8Urls, validate_name
from .numbers import parse_count
from .openapi import serve_openapi
from .preconditions import Preconditions, not_modified
from .receive import MultipartSource, RawSource, RequestBody
from .retention import requested_expires_in, sweep_periodically
from .services import Services, services
from .shares import share_routes
from .storage import BlobNotFoundError, BlobStore, open_store
from .tus.routes import tus_routes
from .tus.service import TusService
from .uploads import (
    MULTIPART_OVERHEAD,
    declared_length,
    draining_on_error,
    refuse_declared_too_large,
    refuse_unless_allowed,
    store_verified,
)
from .web import SecurityHeaders, cors_middleware, web_routes

log = logging.getLogger("updl_server")


class NameConvertor(PathConvertor):
    """Like ``path``, but also across newlines: a name with one must reach validation (400),
    not fall through to "no such route" because ``.*`` stops at ``\\n``."""

    regex = r"[\s\S]*"


register_url_convertor("updl_name", NameConvertor())

MAX_PAGE = 1000
MAX_DELIMITER = 16
# A cursor stands for a name or a common prefix: never longer than a name.
MAX_CURSOR = 4 * ((MAX_NAME_BYTES + 2) // 3)
# A blob can vanish between lookup and open when the name is replaced at that
# instant; looking the name up again finds the new version.
OPEN_ATTEMPTS = 3
UPLOAD_METHODS = frozenset({"POST", "PUT", "PATCH"})  # whose error answers may refuse an upload
# What a presigned redirect carries of the file's own headers (the store's are not the file's digests).
_REDIRECT_HEADERS = ("ETag", "Content-MD5", "Repr-Digest", "Last-Modified", MODE_HEADER, MTIME_HEADER)


def file_info(record: FileRecord) -> dict[str, Any]:
    """The contract's FileInfo object."""
    return {
        "name": record.name,
        "size": record.size,
        "md5": record.md5,
        "sha256": record.sha256,
        "created": isoformat(record.created),
        "last_accessed": isoformat(record.last_accessed),
        "expires": isoformat(record.expires),
        "mode": format_mode(record.mode),
        "mtime": format_mtime(record.mtime),
    }


# routes


async def health(request: Request) -> Response:
    """``GET /health``: liveness, no auth."""
    return JSONResponse({"status": "ok", "version": __version__})


async def upload(request: Request) -> Response:
    """``POST /upload``: a multipart form with ``file``, ``md5`` and optional ``name``."""
    svc = services(request)
    body = RequestBody(request)
    async with draining_on_error(request, body, svc.config.max_size):
        grant = await svc.grant(request, WRITE)
        owner = grant.user_id
        conditions = Preconditions.from_headers(request.headers)
        # The file is at least the body less its framing: a lower bound for the quota's early check.
        declared = declared_length(request)
        least = None if declared is None else max(0, declared - MULTIPART_OVERHEAD)

        async def on_name(name: str) -> None:
            grant.require(WRITE, name)  # a prefix token: known only once the form names the file
            await refuse_unless_allowed(svc.catalog, owner, name, conditions)
            await quotas.refuse_early(svc.catalog, owner, name, least)

        source = MultipartSource(body, request.headers.get("content-type"), on_name)
        refuse_declared_too_large(request, svc.config.max_size, MULTIPART_OVERHEAD)
        admission = await quotas.prepare(
            svc.catalog, owner, svc.config.default_retention, requested_expires_in(request.headers), None, least
        )
        record = await store_verified(svc.store, svc.catalog, owner, source, svc.config.max_size, conditions, admission)
    return JSONResponse(file_info(record))


async def put_file(request: Request) -> Response:
    """``PUT /files/{name}``: the raw body is the file; ``Content-MD5`` is checked if sent."""
    svc = services(request)
    body = RequestBody(request)
    async with draining_on_error(request, body, svc.config.max_size):
        owner, _ = await svc.owner_of(request, WRITE)
        attributes = Attributes.parse(request.headers.get(MODE_HEADER), request.headers.get(MTIME_HEADER))
        digests = {f: request.headers[f] for f in ("repr-digest", "content-digest") if f in request.headers}
        source = RawSource(body, request.path_params["name"], request.headers.get("content-md5"), attributes, digests)
        refuse_declared_too_large(request, svc.config.max_size)
        conditions = Preconditions.from_headers(request.headers)
        name = validate_name(request.path_params["name"])
        await refuse_unless_allowed(svc.catalog, owner, name, conditions)
        admission = await quotas.prepare(
            svc.catalog,
            owner,
            svc.config.default_retention,
            requested_expires_in(request.headers),
            name,
            declared_length(request),
        )
        record = await store_verified(svc.store, svc.catalog, owner, source, svc.config.max_size, conditions, admission)
    return JSONResponse(file_info(record))


async def list_files(request: Request) -> Response:
    """``GET /files?prefix=&delimiter=&limit=&cursor=``: the caller's files by name, paginated.

    With ``delimiter``, names below ``prefix`` that contain it further on are
    rolled up into ``prefixes`` (folders), each listed once, paged with the files.
    """
    svc = services(request)
    grant = await svc.grant(request, READ)
    owner = grant.user_id
    params = request.query_params
    limit = _limit(params.get("limit"))
    prefix = params.get("prefix", "")
    grant.require_prefix(READ, prefix)
    after = _decode_cursor(params["cursor"]) if params.get("cursor") else None
    delimiter = params.get("delimiter")
    if delimiter is None:
        records = await run_in_threadpool(svc.catalog.list_files, owner, prefix=prefix, after=after, limit=limit + 1)
        page = records[:limit]
        next_cursor = _encode_cursor(page[-1].name) if len(records) > limit else None
        return JSONResponse({"files": [file_info(r) for r in page], "next_cursor": next_cursor})
    if not 1 <= len(delimiter) <= MAX_DELIMITER or any(ord(c) < 0x20 or ord(c) == 0x7F for c in delimiter):
        raise bad_request(
            f"delimiter must be 1 to {MAX_DELIMITER} printable characters", field="delimiter", value=delimiter
        )
    entries = await run_in_threadpool(
        svc.catalog.list_entries, owner, prefix=prefix, delimiter=delimiter, after=after, limit=limit + 1
    )
    shown = entries[:limit]
    last = shown[-1] if shown else None
    next_cursor = None
    if len(entries) > limit and last is not None:
        next_cursor = _encode_cursor(last if isinstance(last, str) else last.name)
    return JSONResponse(
        {
            "files": [file_info(e) for e in shown if not isinstance(e, str)],
            "prefixes": [e for e in shown if isinstance(e, str)],
            "next_cursor": next_cursor,
        }
    )


async def usage(request: Request) -> Response:
    """``GET /usage?prefix=``: how many files start with ``prefix`` and their total size,
    with the user's quota and whole usage against it (``quota_*``: ``null`` when unlimited)."""
    svc = services(request)
    grant = await svc.grant(request, READ)
    owner = grant.user_id
    prefix = request.query_params.get("prefix", "")
    grant.require_prefix(READ, prefix)
    count, total = await run_in_threadpool(svc.catalog.usage, owner, prefix)
    limits = await run_in_threadpool(quotas.limits_of, svc.catalog, owner)
    all_files, all_bytes = (count, total) if not prefix else await run_in_threadpool(svc.catalog.usage, owner)
    return JSONResponse(
        {
            "prefix": prefix,
            "files": count,
            "bytes": total,
            **limits.fields(all_files, all_bytes),
            "retention_seconds": limits.retention_seconds or svc.config.default_retention,
        }
    )


async def info(request: Request) -> Response:
    """``GET /info/{name}``: one file's FileInfo."""
    svc = services(request)
    owner, name = await svc.owner_of(request, READ)
    record = await run_in_threadpool(svc.catalog.file, owner, name)
    if record is None:
        raise no_such_file(name)
    return JSONResponse(file_info(record))


async def get_file(request: Request) -> Response:
    """``GET``/``HEAD /files/{name}``: the bytes (or just the headers), with Range support."""
    svc = services(request)
    owner, name = await svc.owner_of(request, READ)
    for _ in range(OPEN_ATTEMPTS):
        record = await run_in_threadpool(svc.catalog.file, owner, name)
        if record is None:
            raise no_such_file(name)
        if not_modified(request.headers.get("if-none-match"), record.md5):
            return Response(status_code=304, headers={"ETag": etag(record)})
        byte_range = wanted_range(record, request.headers.get("range"), request.headers.get("if-range"))
        if request.method == "HEAD":
            return head_response(record, byte_range)
        # A Range the server ignores (If-Range mismatch, several ranges) must not reach the
        # store through a redirect: it would answer that range of the new version.
        if svc.presign is not None and (byte_range is not None or "range" not in request.headers):
            url = await run_in_threadpool(svc.presign, record.location, record.name)
            await run_in_threadpool(svc.catalog.record_access, record.id, utcnow())
            return presigned_redirect(record, url)
        try:
            reader = await run_in_threadpool(svc.store.open, record.location, *reader_bounds(byte_range))
        except BlobNotFoundError:
            continue  # replaced and deleted since the lookup: the next lookup sees the new file
        await run_in_threadpool(svc.catalog.record_access, record.id, utcnow())
        return stream_response(record, byte_range, reader)
    log.error("file %r of user %d has no blob", name, owner)
    raise HTTPError(500, "internal server error")


async def delete_file(request: Request) -> Response:
    """``DELETE /files/{name}``: 204, or 404 when absent."""
    svc = services(request)
    owner, name = await svc.owner_of(request, DELETE)
    existed, orphaned = await run_in_threadpool(svc.catalog.delete_file, owner, name)
    if not existed:
        raise no_such_file(name)
    audit.record("file.deleted", user_id=owner, name=name)
    # After the row is gone: a reader never finds a row without a blob. A blob with other names stays.
    if orphaned is not None:
        await run_in_threadpool(svc.store.delete, orphaned)
    return Response(status_code=204)


def presigned_redirect(record: FileRecord, url: str) -> Response:
    """307 to a presigned store URL, with the file's ``ETag`` and ``Content-MD5`` (the store's
    own ETag is not the MD5 for a multipart object, so clients verify against these)."""
    headers = {k: v for k, v in file_headers(record, None).items() if k in _REDIRECT_HEADERS}
    return RedirectResponse(url, status_code=307, headers={**headers, "Cache-Control": "no-store"})


async def link_file(request: Request) -> Response:
    """``POST /files/{name}``: upload by content (a JSON offer of digests; see :mod:`.dedup`)."""
    return JSONResponse(file_info(await link_by_content(request)))


_BY_METHOD = {"GET": get_file, "HEAD": get_file, "PUT": put_file, "DELETE": delete_file, "POST": link_file}


async def file_by_name(request: Request) -> Response:
    """``/files/{name}``: one route for its methods, so a 405 lists them all in ``Allow``."""
    return await _BY_METHOD[request.method](request)


def _limit(raw: str | None) -> int:
    """The page size: default and cap ``MAX_PAGE``; 400 when not a positive integer."""
    if raw is None:
        return MAX_PAGE
    limit = parse_count(raw)
    if limit is None or limit < 1:
        raise bad_request("limit must be a positive integer", field="limit")
    return min(limit, MAX_PAGE)


def _encode_cursor(name: str) -> str:
    """An opaque cursor: the last name of a page, base64url-encoded."""
    return base64.urlsafe_b64encode(name.encode("utf-8")).decode("ascii")


def _decode_cursor(cursor: str) -> str:
    """The name a cursor stands for; 400 when it is not one of ours."""
    if len(cursor) > MAX_CURSOR:
        raise bad_request("invalid cursor: too long", field="cursor")
    try:
        raw = base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise bad_request("invalid cursor", cursor=cursor) from None


# errors: every answer that is not a success is JSON


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPError)
    if request.method in UPLOAD_METHODS:
        _note_refusal(request, exc)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def _note_refusal(request: Request, exc: HTTPError) -> None:
    """Count and audit an error answer that refuses an upload (409, 412, 413, ...)."""
    reason = metrics.refusal_reason(exc.status, exc.extra)
    if reason is None:
        return
    metrics.upload_refused(reason)
    found = {k: exc.extra[k] for k in ("name", "expected", "actual", "max_size") if k in exc.extra}
    name = request.path_params.get("name", found.pop("name", None))
    audit.record("upload.refused", reason=reason, status=exc.status, name=name, **found)


async def _on_starlette_error(request: Request, exc: Exception) -> Response:
    # Starlette's own 404 (unknown route) and 405 (wrong method, with Allow).
    assert isinstance(exc, HTTPException)
    messages = {404: "no such route", 405: "method not allowed"}
    message = messages.get(exc.status_code, str(exc.detail).lower())
    return JSONResponse({"error": message, "path": request.url.path}, status_code=exc.status_code, headers=exc.headers)


async def _on_storage_error(request: Request, exc: Exception) -> Response:
    # A full disk is not a server bug: 507, which clients do not retry. Anything else is one.
    if not out_of_space(exc):
        raise exc
    log.error("out of storage space: %s %s: %s", request.method, request.url.path, exc)
    return await _on_http_error(request, insufficient_storage())


async def _on_disconnect(request: Request, exc: Exception) -> Response:
    # The client is gone; its upload was discarded (a tus PATCH: rolled back or kept). Nothing reads this.
    return JSONResponse({"error": "client disconnected"}, status_code=400)


async def _on_crash(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "internal server error"}, status_code=500)


def create_app(config: ServerConfig, *, catalog: Catalog | None = None, store: BlobStore | None = None) -> Starlette:
    """The Starlette app for ``config``; ``catalog``/``store`` default to SQL and local disk.

    Startup creates the data dir and tables, claims this process's temp dir
    and sweeps what crashed processes left behind.
    """
    catalog = catalog if catalog is not None else Catalog(config.database_url)
    store = store if store is not None else open_store(config)
    tus = TusService(catalog, store, config.max_size, config.limits.body_timeout, config.default_retention)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        await run_in_threadpool(catalog.create_tables)
        await run_in_threadpool(store.start)
        report = await run_in_threadpool(store.sweep, catalog.is_referenced)
        metrics.swept(report.orphan_blobs, kind="orphan_blob")
        metrics.swept(report.temp_dirs, kind="temp_dir")
        if report.temp_dirs or report.orphan_blobs:
            log.warning("removed %d stale temp dir(s) and %d orphan blob(s)", report.temp_dirs, report.orphan_blobs)
        swept = await run_in_threadpool(tus.sweep)
        if swept:
            log.warning("removed %d expired or orphaned resumable upload(s)", swept)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(sweep_periodically, catalog, store, config.sweep_interval)
                yield
                tasks.cancel_scope.cancel()
        finally:
            store.close()
            catalog.close()

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/files", list_files, methods=["GET"]),
        Route("/usage", usage, methods=["GET"]),
        Route("/files/{name:updl_name}", file_by_name, methods=list(_BY_METHOD)),
        Route("/info/{name:updl_name}", info, methods=["GET"]),
        Route("/metrics", metrics.serve_metrics, methods=["GET"]),
        Route("/openapi.json", serve_openapi, methods=["GET"]),
        *tus_routes(),
        *account_routes(),
        *share_routes(),
        *web_routes(),
    ]
    audit.configure(config.audit_log)
    metrics.configure(config.metrics_token is not None, config.metrics_dir)
    metrics.watch(
        metrics.GaugeOf(
            "updl_tus_uploads_open",
            "Resumable uploads started and not finished (nor expired).",
            lambda: catalog.open_tus_uploads(utcnow()),
        )
    )
    observers = [Middleware(metrics.RequestMetrics, routes=routes), Middleware(audit.AuditContext)]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            *observers,
            *cors_middleware(config.cors_origins),
            Middleware(SecurityHeaders),
            Middleware(Utf8Urls),
        ],
        exception_handlers={
            HTTPError: _on_http_error,
            HTTPException: _on_starlette_error,
            ClientDisconnect: _on_disconnect,
            OSError: _on_storage_error,
            DBAPIError: _on_storage_error,
            Exception: _on_crash,
        },
    )
    presign = getattr(store, "presign_url", None) if config.s3_presign_downloads else None
    app.state.services = Services(config, catalog, store, presign)
    app.state.tus = tus
    return app
