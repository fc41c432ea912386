"""The tus 1.0 routes under ``/tus/``: thin handlers over :class:`.service.TusService`.

Same token auth and name rules as the rest of the API (every route but
``OPTIONS`` needs the ``write`` scope, and a prefix token's prefix; see ``access.py``); every answer carries
``Tus-Resumable`` and every error is JSON. ``OPTIONS`` (discovery) needs no
token, like ``/health``. The answer that completes an upload, and ``HEAD``
of a completed one, carry the stored file's ``ETag``, ``Upload-Md5`` and
``Last-Modified`` (updl's extension; see docs/api.md).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..access import WRITE, Grant
from ..attributes import attribute_headers
from ..catalog import FileRecord, TusCompletion, TusRecord
from ..digests import repr_digest
from ..errors import HTTPError, bad_request, insufficient_storage, out_of_space
from ..formats import UPLOAD_ID, http_date
from ..receive import RequestBody
from ..services import services
from ..uploads import declared_length, draining_on_error
from .concat import Concat, concatenate, parse_concat
from .protocol import (
    CHECKSUMS,
    OFFSET_STREAM,
    TUS_EXTENSIONS,
    TUS_VERSION,
    header_int,
    no_such_upload,
    not_final,
    not_offset_stream,
    offset_conflict,
    parse_checksum,
    parse_claims,
    parse_creation,
    parse_final_md5,
    past_length,
    refuse_unsupported,
    unsupported_version,
)
from .service import TusService

log = logging.getLogger("updl_server")

Handler = Callable[[Request], Awaitable[Response]]


def _tus(request: Request) -> TusService:
    service: TusService = request.app.state.tus
    return service


async def _grant(request: Request) -> Grant:
    return await services(request).grant(request, WRITE)


async def _find(request: Request) -> TusRecord | TusCompletion:
    """The caller's upload, once its token may write its name (403 otherwise)."""
    grant = await _grant(request)
    upload = await _tus(request).find(grant.user_id, _upload_id(request))
    grant.require(WRITE, upload.name or None)  # a partial upload has no name of its own
    return upload


def _upload_id(request: Request) -> str:
    upload_id = str(request.path_params["upload_id"])
    if not UPLOAD_ID.match(upload_id):
        raise no_such_upload(upload_id)
    return upload_id


def _has_body(request: Request) -> bool:
    declared = declared_length(request)
    return (declared is not None and declared > 0) or "transfer-encoding" in request.headers


def _offset_stream(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == OFFSET_STREAM


def _progress_headers(record: TusRecord) -> dict[str, str]:
    return {"Upload-Offset": str(record.offset), "Upload-Expires": http_date(record.expires)}


def _stored_headers(md5: str, stored: datetime, sha256: str | None = None) -> dict[str, str]:
    """What a completed upload stored: the file's ETag and digests, and when (its ``created``)."""
    headers = {"ETag": f'"{md5}"', "Upload-Md5": md5, "Last-Modified": http_date(stored)}
    return {**headers, "Repr-Digest": repr_digest(md5, sha256)}


def _completed_headers(record: TusRecord, stored: FileRecord | None) -> dict[str, str]:
    headers = _progress_headers(record)
    if stored is not None:
        headers.update(_stored_headers(stored.md5, stored.created, stored.sha256))
        if stored.expires is not None:
            headers["Updl-Expires"] = http_date(stored.expires)
        headers.update(attribute_headers(stored))
    return headers


def _refuse_md5_unless_final(request: Request, offset: int, length: int, final_md5: str | None) -> None:
    """400 before reading the body when ``Content-Length`` proves it does not end the upload."""
    declared = declared_length(request)
    if final_md5 is not None and declared is not None and offset + declared != length:
        raise not_final(length)


def tus_protocol(handler: Handler) -> Handler:
    """412 unless ``Tus-Resumable: 1.0.0`` (OPTIONS excepted); ``Tus-Resumable`` on every answer."""

    async def wrapped(request: Request) -> Response:
        try:
            if request.method != "OPTIONS" and request.headers.get("tus-resumable") != TUS_VERSION:
                raise unsupported_version(request.headers.get("tus-resumable"))
            response = await handler(request)
        except HTTPError as exc:
            exc.headers = {**exc.headers, "Tus-Resumable": TUS_VERSION}
            raise
        except Exception as exc:
            if not out_of_space(exc):
                raise
            log.error("out of storage space: %s %s: %s", request.method, request.url.path, exc)
            raise insufficient_storage({"Tus-Resumable": TUS_VERSION}) from exc
        response.headers["Tus-Resumable"] = TUS_VERSION
        return response

    return wrapped


async def options(request: Request) -> Response:
    """``OPTIONS /tus/``: what this server supports."""
    return Response(
        status_code=204,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(_tus(request).max_size),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
        },
    )


async def create(request: Request) -> Response:
    """``POST /tus/``: a new upload (``Upload-Length``, ``Upload-Metadata`` with ``name``, ``md5``).

    With an ``application/offset+octet-stream`` body, the body is its first PATCH.
    """
    tus = _tus(request)
    body = RequestBody(request)
    async with draining_on_error(request, body, tus.max_size):
        grant = await _grant(request)
        # Before any other header: Upload-Concat changes them all.
        refuse_unsupported(request.headers)
        concat = parse_concat(request.headers)
        with_upload = _offset_stream(request) and _has_body(request)
        if concat is not None and not concat.partial:
            return await _create_final(request, tus, grant, concat, with_upload)
        checksum = parse_checksum(request.headers.get("upload-checksum")) if with_upload else None
        final_md5 = parse_final_md5(request.headers.get("upload-md5"))
        length = header_int(request.headers, "upload-length")
        if final_md5 is not None and (concat is not None or (length > 0 and not with_upload)):
            raise not_final(length)  # a partial upload's MD5 is not the file's: it goes on the final
        _refuse_md5_unless_final(request, 0, length, final_md5)
        new = parse_creation(request.headers, tus.max_size, partial=concat is not None)
        grant.require(WRITE, new.name or None)  # a partial upload is named by its final one
        record = await tus.create(grant.user_id, new)
        location = f"{str(request.base_url).rstrip('/')}/tus/{record.id}"
        stored = None
        try:
            if record.length == 0 and not record.partial:
                stored = await tus.complete_empty(record, final_md5)
            elif with_upload:
                record, stored = await tus.append(record, 0, checksum, body, final_md5)
        except HTTPError as exc:
            exc.headers = {**exc.headers, "Location": location}
            raise
    return Response(status_code=201, headers={"Location": location, **_completed_headers(record, stored)})


async def _create_final(request: Request, tus: TusService, grant: Grant, concat: Concat, with_body: bool) -> Response:
    """``POST /tus/`` with ``Upload-Concat: final;...``: the parts become the file at once."""
    if with_body or "upload-length" in request.headers:
        raise bad_request("a final upload (Upload-Concat: final) takes no body and no Upload-Length")
    final_md5 = parse_final_md5(request.headers.get("upload-md5"))
    raw_metadata = request.headers.get("upload-metadata", "")
    grant.require(WRITE, parse_claims(raw_metadata).name)
    record, stored = await concatenate(tus, grant.user_id, concat, raw_metadata, final_md5)
    location = f"{str(request.base_url).rstrip('/')}/tus/{record.id}"
    headers = {"Location": location, "Upload-Length": str(record.length), **_completed_headers(record, stored)}
    return Response(status_code=201, headers=headers)


async def head(request: Request) -> Response:
    """``HEAD /tus/{id}``: how far the upload is (a completed one: what it stored)."""
    upload = await _find(request)
    headers = {
        "Upload-Length": str(upload.length),
        "Upload-Expires": http_date(upload.expires),
        "Cache-Control": "no-store",
    }
    if isinstance(upload, TusCompletion):
        headers["Upload-Offset"] = str(upload.length)
        headers.update(_stored_headers(upload.md5, upload.stored, upload.sha256))
    else:
        headers["Upload-Offset"] = str(upload.offset)
        if upload.partial:
            headers["Upload-Concat"] = "partial"
    if upload.metadata:
        headers["Upload-Metadata"] = upload.metadata
    return Response(status_code=200, headers=headers)


async def patch(request: Request) -> Response:
    """``PATCH /tus/{id}``: append the body at ``Upload-Offset`` (checked by Upload-Checksum)."""
    tus = _tus(request)
    body = RequestBody(request)
    async with draining_on_error(request, body, tus.max_size):
        grant = await _grant(request)
        if not _offset_stream(request):
            raise not_offset_stream()
        offset = header_int(request.headers, "upload-offset")
        checksum = parse_checksum(request.headers.get("upload-checksum"))
        final_md5 = parse_final_md5(request.headers.get("upload-md5"))
        upload = await tus.find(grant.user_id, _upload_id(request))
        grant.require(WRITE, upload.name or None)  # a partial upload has no name of its own
        if isinstance(upload, TusCompletion):  # HEAD says it is done, and what it stored
            raise offset_conflict(upload.length, offset)
        declared = declared_length(request)
        if declared is not None and offset + declared > upload.length:
            raise past_length(upload.length)
        _refuse_md5_unless_final(request, offset, upload.length, final_md5)
        record, stored = await tus.append(upload, offset, checksum, body, final_md5)
    return Response(status_code=204, headers=_completed_headers(record, stored))


async def terminate(request: Request) -> Response:
    """``DELETE /tus/{id}``: abandon the upload, deleting its bytes (a completed one: forget it)."""
    tus = _tus(request)
    upload = await _find(request)
    await tus.terminate(upload)
    return Response(status_code=204)


_BY_METHOD: dict[str, Handler] = {"HEAD": head, "PATCH": patch, "DELETE": terminate, "OPTIONS": options}


async def upload_resource(request: Request) -> Response:
    """``/tus/{id}``: one route for its methods, so a 405 lists them all."""
    return await _BY_METHOD[request.method](request)


async def collection(request: Request) -> Response:
    """``/tus/``: creation and discovery."""
    return await (options(request) if request.method == "OPTIONS" else create(request))


def tus_routes() -> list[Route]:
    """The routes to mount in the app."""
    return [
        Route("/tus/", tus_protocol(collection), methods=["POST", "OPTIONS"]),
        Route("/tus", tus_protocol(collection), methods=["POST", "OPTIONS"]),
        Route("/tus/{upload_id}", tus_protocol(upload_resource), methods=list(_BY_METHOD)),
    ]
