"""Upload by content: ``POST /files/{name}`` links a name to content the caller already stored.

The client offers a JSON body ``{"size": N, "sha256": "<64 hex>", "md5": "<32 hex>"}``
(``md5`` optional) before sending any byte. If the caller holds a blob with
that size and digests, the name points at it (the blob is reference counted
and deleted with its last name, see ``Catalog.link_file``) and the answer is
the new FileInfo; otherwise 404 ``{"error": "no such content"}`` and the client
uploads as usual. Only the caller's own blobs that a live name holds are
searched (below the token's prefix, for a prefix-limited token): dedup never
crosses users (it would tell one user whether another holds a file), so a 404
says nothing about anyone else. ``If-Match``/``If-None-Match`` apply as to any
upload. The SHA-256 is the key; a match also needs the size (and the MD5 when
given), so a lookup never confuses two contents.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from . import audit, quotas
from .access import WRITE
from .attributes import MODE_HEADER, MTIME_HEADER, Attributes
from .catalog import FileRecord, PreconditionFailedError
from .digests import parse_sha256_hex
from .errors import HTTPError, bad_request
from .formats import MD5_HEX
from .names import validate_name
from .preconditions import Preconditions, precondition_failed
from .receive import RequestBody
from .retention import requested_expires_in
from .services import services

# An offer is three short fields; anything longer is not one.
MAX_OFFER = 4 * 1024


def no_such_content(name: str) -> HTTPError:
    """404: the caller holds no blob with the offered digests; upload the bytes instead."""
    return HTTPError(404, "no such content", name=name)


async def link_by_content(request: Request) -> FileRecord:
    """Handle one offer; the linked file's record, or an ``HTTPError`` (400, 403, 404, 412, 507).

    A linked name is a new version like any upload: the same write scope, preconditions,
    quota (its size counts, as for bytes sent), expiry (``Updl-Expires-In``) and attributes
    (``Updl-Mode``/``Updl-Mtime``).
    """
    svc = services(request)
    grant = await svc.grant(request)
    name = validate_name(request.path_params["name"])
    grant.require(WRITE, name)
    owner = grant.user_id
    attributes = Attributes.parse(request.headers.get(MODE_HEADER), request.headers.get(MTIME_HEADER))
    conditions = Preconditions.from_headers(request.headers)
    expires_in = requested_expires_in(request.headers)
    size, sha256, md5 = _parse_offer(await _read_offer(RequestBody(request)))
    if size > svc.config.max_size:
        raise no_such_content(name)
    admission = await quotas.prepare(svc.catalog, owner, svc.config.default_retention, expires_in, name, size)
    try:
        linked = await run_in_threadpool(
            lambda: svc.catalog.link_file(
                owner,
                name,
                size,
                sha256,
                md5,
                within=grant.prefix,  # a prefix-limited token finds only content named below it
                check=conditions.allows if conditions else None,
                expires_in=admission.expires_in,
                admit=admission.admit,
                mode=attributes.mode,
                mtime=attributes.mtime,
            )
        )
    except PreconditionFailedError as exc:
        raise precondition_failed(name, exc.current_md5) from None
    if linked is None:
        raise no_such_content(name)
    record, orphaned = linked
    if orphaned is not None:  # the name's previous content had no other name
        await run_in_threadpool(svc.store.delete, orphaned)
    audit.record("upload.linked", user_id=owner, name=name, size=size, md5=record.md5)
    return record


async def _read_offer(body: RequestBody) -> bytes:
    """The request body, refused past ``MAX_OFFER`` bytes (never held unbounded)."""
    data = bytearray()
    async for chunk in body.chunks():
        data += chunk
        if len(data) > MAX_OFFER:
            raise bad_request(f"a content offer is a JSON object of at most {MAX_OFFER} bytes")
    return bytes(data)


def _parse_offer(raw: bytes) -> tuple[int, str, str | None]:
    """``(size, sha256, md5)`` from the offer's JSON; 400 when it is not one."""
    try:
        offer: Any = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise bad_request('expected a JSON object {"size": N, "sha256": "<64 hex>", "md5": "<32 hex>"}') from None
    if not isinstance(offer, dict):
        raise bad_request("the content offer must be a JSON object")
    size = offer.get("size")
    if type(size) is not int or size < 0:
        raise bad_request("size must be a non-negative integer", field="size")
    sha256 = offer.get("sha256")
    if not isinstance(sha256, str):
        raise bad_request("sha256 (64 hex digits) is required", field="sha256")
    md5 = offer.get("md5")
    if md5 is not None and (not isinstance(md5, str) or not MD5_HEX.match(md5)):
        raise bad_request("md5 must be 32 hex digits", field="md5")
    return size, parse_sha256_hex(sha256, "the offer"), None if md5 is None else md5.lower()
