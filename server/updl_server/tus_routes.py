"""The tus 1.0 routes under ``/tus/``: thin handlers over :class:`~updl_server.tus.TusService`.

Same token auth and name rules as the rest of the API; every answer carries
``Tus-Resumable`` and every error is JSON. ``OPTIONS`` (discovery) needs no
token, like ``/health``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import HTTPError, bad_request
from .receive import RequestBody
from .tus import (
    CHECKSUMS,
    OFFSET_STREAM,
    TUS_EXTENSIONS,
    TUS_VERSION,
    TusRecord,
    TusService,
    header_int,
    http_date,
    no_such_upload,
    parse_checksum,
)
from .uploads import draining_on_error

Handler = Callable[[Request], Awaitable[Response]]
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


def _tus(request: Request) -> TusService:
    service: TusService = request.app.state.tus
    return service


async def _owner(request: Request) -> int:
    owner: int = await request.app.state.services.owner(request)
    return owner


def _upload_id(request: Request) -> str:
    upload_id = str(request.path_params["upload_id"])
    if not _UPLOAD_ID.match(upload_id):
        raise no_such_upload(upload_id)
    return upload_id


def _has_body(request: Request) -> bool:
    declared = request.headers.get("content-length", "")
    return (declared.isdigit() and int(declared) > 0) or "transfer-encoding" in request.headers


def _offset_stream(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == OFFSET_STREAM


def _progress_headers(record: TusRecord) -> dict[str, str]:
    return {"Upload-Offset": str(record.offset), "Upload-Expires": http_date(record.expires)}


def tus_protocol(handler: Handler) -> Handler:
    """412 unless ``Tus-Resumable: 1.0.0`` (OPTIONS excepted); ``Tus-Resumable`` on every answer."""

    async def wrapped(request: Request) -> Response:
        try:
            if request.method != "OPTIONS" and request.headers.get("tus-resumable") != TUS_VERSION:
                raise HTTPError(412, f"missing or unsupported Tus-Resumable; this server speaks "
                                     f"tus {TUS_VERSION}", headers={"Tus-Version": TUS_VERSION},
                                tus_resumable=request.headers.get("tus-resumable"))
            response = await handler(request)
        except HTTPError as exc:
            exc.headers = {**exc.headers, "Tus-Resumable": TUS_VERSION}
            raise
        response.headers["Tus-Resumable"] = TUS_VERSION
        return response

    return wrapped


async def options(request: Request) -> Response:
    """``OPTIONS /tus/``: what this server supports."""
    return Response(status_code=204, headers={
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": TUS_EXTENSIONS,
        "Tus-Max-Size": str(_tus(request).max_size),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
    })


async def create(request: Request) -> Response:
    """``POST /tus/``: a new upload (``Upload-Length``, ``Upload-Metadata`` with ``name``, ``md5``).

    With an ``application/offset+octet-stream`` body, the body is its first PATCH.
    """
    tus = _tus(request)
    body = RequestBody(request)
    async with draining_on_error(request, body, tus.max_size):
        owner = await _owner(request)
        with_upload = _offset_stream(request) and _has_body(request)
        checksum = parse_checksum(request.headers.get("upload-checksum")) if with_upload else None
        record = await tus.create(owner, request)
        location = f"{str(request.base_url).rstrip('/')}/tus/{record.id}"
        try:
            if record.length == 0:
                await tus.complete_empty(record)
            elif with_upload:
                record, _ = await tus.append(record, 0, checksum, body)
        except HTTPError as exc:
            exc.headers = {**exc.headers, "Location": location}
            raise
    return Response(status_code=201, headers={"Location": location, **_progress_headers(record)})


async def head(request: Request) -> Response:
    """``HEAD /tus/{id}``: how far the upload is."""
    record = await _tus(request).live(await _owner(request), _upload_id(request))
    headers = {**_progress_headers(record), "Upload-Length": str(record.length),
               "Cache-Control": "no-store"}
    if record.metadata:
        headers["Upload-Metadata"] = record.metadata
    return Response(status_code=200, headers=headers)


async def patch(request: Request) -> Response:
    """``PATCH /tus/{id}``: append the body at ``Upload-Offset`` (checked by ``Upload-Checksum``)."""
    tus = _tus(request)
    body = RequestBody(request)
    async with draining_on_error(request, body, tus.max_size):
        owner = await _owner(request)
        if not _offset_stream(request):
            raise HTTPError(415, f"PATCH needs Content-Type: {OFFSET_STREAM}")
        offset = header_int(request, "upload-offset")
        checksum = parse_checksum(request.headers.get("upload-checksum"))
        record = await tus.live(owner, _upload_id(request))
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and offset + int(declared) > record.length:
            raise bad_request("the body goes past Upload-Length", length=record.length)
        record, _ = await tus.append(record, offset, checksum, body)
    return Response(status_code=204, headers=_progress_headers(record))


async def terminate(request: Request) -> Response:
    """``DELETE /tus/{id}``: abandon the upload; its bytes are deleted."""
    tus = _tus(request)
    record = await tus.live(await _owner(request), _upload_id(request))
    await tus.terminate(record)
    return Response(status_code=204)


_BY_METHOD: dict[str, Handler] = {"HEAD": head, "PATCH": patch, "DELETE": terminate,
                                  "OPTIONS": options}


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
