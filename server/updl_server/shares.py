"""Share links: ``POST``/``GET /shares``, ``DELETE /shares/{id}`` and the tokenless ``/s/<id>.<secret>``.

A link names one file of its owner. Only a hash of its secret is stored; the secret is
compared in constant time. A download is a GET that starts sending the body (a Range GET
counts as one download; HEAD and 304 do not). After ``max_downloads``, expiry or
revocation the link answers 410; while its owner is disabled, 404.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Integer, String, Table, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import audit
from .access import READ
from .catalog import Catalog, metadata, users
from .downloads import etag, head_response, reader_bounds, stream_response, wanted_range
from .errors import HTTPError, bad_request, no_such_file
from .formats import isoformat
from .names import validate_name
from .preconditions import not_modified
from .services import services

MAX_EXPIRES_IN = 30 * 24 * 3600
MAX_LINK = 128  # an id and a secret are far shorter: anything longer is refused unread
ID_BYTES = 9
SECRET_BYTES = 24

shares = Table(
    "shares",
    metadata,
    Column("id", String(16), primary_key=True),  # the clear lookup half of the link
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(1024), nullable=False),
    Column("hash", String(64), nullable=False),  # sha256 hex of the secret half
    Column("created", DateTime, nullable=False),
    Column("expires", DateTime, nullable=False),
    Column("max_downloads", Integer),
    Column("downloads", Integer, nullable=False, server_default="0"),
    Column("revoked", DateTime),
)


@dataclass(frozen=True)
class Share:
    """One row of ``shares``."""

    id: str
    owner_id: int
    name: str
    hash: str
    created: datetime
    expires: datetime
    max_downloads: int | None
    downloads: int
    revoked: datetime | None

    def usable(self, now: datetime) -> bool:
        """Not revoked, not expired, not used up."""
        used_up = self.max_downloads is not None and self.downloads >= self.max_downloads
        return self.revoked is None and now < self.expires and not used_up

    def info(self) -> dict[str, Any]:
        """The JSON form (without the secret, which only creation shows)."""
        return {
            "id": self.id,
            "name": self.name,
            "created": isoformat(self.created),
            "expires": isoformat(self.expires),
            "max_downloads": self.max_downloads,
            "downloads": self.downloads,
            "revoked": isoformat(self.revoked),
        }


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def add_share(catalog: Catalog, owner: int, name: str, expires_in: int, max_downloads: int | None) -> tuple[Share, str]:
    """Record a new link; the share and its secret (shown once)."""
    share_id, secret = secrets.token_urlsafe(ID_BYTES), secrets.token_urlsafe(SECRET_BYTES)
    now = catalog.clock()
    share = Share(
        share_id, owner, name, _hash(secret), now, now + timedelta(seconds=expires_in), max_downloads, 0, None
    )
    with catalog._write() as conn:
        conn.execute(shares.insert().values(**asdict(share)))
    return share, secret


def find_share(catalog: Catalog, share_id: str) -> Share | None:
    """The link ``share_id``, or ``None`` (also when its owner is disabled: their links stop with their tokens)."""
    query = (
        select(shares)
        .join(users, users.c.id == shares.c.owner_id)
        .where(shares.c.id == share_id, users.c.disabled.is_(None))
    )
    with catalog.engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else Share(**row._mapping)


def list_shares(catalog: Catalog, owner: int) -> list[Share]:
    """The owner's links, newest first."""
    query = select(shares).where(shares.c.owner_id == owner).order_by(shares.c.created.desc(), shares.c.id)
    with catalog.engine.connect() as conn:
        return [Share(**row._mapping) for row in conn.execute(query)]


def revoke_share(catalog: Catalog, owner: int, share_id: str) -> bool:
    """Revoke the owner's link; whether it was theirs and not yet revoked."""
    where = (shares.c.id == share_id, shares.c.owner_id == owner, shares.c.revoked.is_(None))
    with catalog._write() as conn:
        return conn.execute(shares.update().where(*where).values(revoked=catalog.clock())).rowcount == 1


def count_download(catalog: Catalog, share: Share) -> bool:
    """Take one download from the link, atomically; ``False`` when none is left."""
    query = shares.update().where(shares.c.id == share.id, shares.c.revoked.is_(None))
    if share.max_downloads is not None:
        query = query.where(shares.c.downloads < share.max_downloads)
    with catalog._write() as conn:
        return conn.execute(query.values(downloads=shares.c.downloads + 1)).rowcount == 1


def _expires_in(raw: object) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= MAX_EXPIRES_IN:
        raise bad_request(f"expires_in must be 1 to {MAX_EXPIRES_IN} seconds", field="expires_in")
    return raw


def _max_downloads(raw: object) -> int | None:
    if raw is None:
        return None
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= 2**31 - 1:
        raise bad_request("max_downloads must be a positive integer", field="max_downloads")
    return raw


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


async def create(request: Request) -> Response:
    """``POST /shares`` {name, expires_in, max_downloads?}: a link to one of the caller's files."""
    svc = services(request)
    grant = await svc.grant(request)
    body = await _json_object(request)
    raw_name = body.get("name")
    if not isinstance(raw_name, str):
        raise bad_request("name must be a string", field="name")
    name = validate_name(raw_name)
    grant.require(READ, name)
    expires_in, max_downloads = _expires_in(body.get("expires_in")), _max_downloads(body.get("max_downloads"))
    if await run_in_threadpool(svc.catalog.file, grant.user_id, name) is None:
        raise no_such_file(name)
    share, secret = await run_in_threadpool(add_share, svc.catalog, grant.user_id, name, expires_in, max_downloads)
    url = str(request.base_url).rstrip("/") + f"/s/{share.id}.{secret}"
    audit.record(
        "share.created", share_id=share.id, name=name, expires=share.info()["expires"], max_downloads=max_downloads
    )
    return JSONResponse({**share.info(), "url": url}, status_code=201)


async def listing(request: Request) -> Response:
    """``GET /shares``: the caller's links (without their secrets)."""
    svc = services(request)
    grant = await svc.grant(request)
    found = await run_in_threadpool(list_shares, svc.catalog, grant.user_id)
    return JSONResponse({"shares": [s.info() for s in found]})


async def revoke(request: Request) -> Response:
    """``DELETE /shares/{id}``: 204, or 404 when not the caller's live link."""
    svc = services(request)
    grant = await svc.grant(request)
    share_id = request.path_params["id"]
    if len(share_id) > MAX_LINK or not await run_in_threadpool(revoke_share, svc.catalog, grant.user_id, share_id):
        raise HTTPError(404, "no such share link", share_id=share_id[:MAX_LINK])
    audit.record("share.revoked", share_id=share_id)
    return Response(status_code=204)


SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, no-store",
}


def _gone() -> HTTPError:
    return HTTPError(410, "this link has expired, was revoked or is used up")


async def download(request: Request) -> Response:
    """``GET``/``HEAD /s/<id>.<secret>``: the shared file, with no token; Range and ETag as for /files."""
    svc = services(request)
    link = request.path_params["link"]
    share_id, dot, secret = link.partition(".")
    share = None if len(link) > MAX_LINK or not dot else await run_in_threadpool(find_share, svc.catalog, share_id)
    if share is None or not hmac.compare_digest(share.hash, _hash(secret)):
        raise HTTPError(404, "no such share link")
    if not share.usable(svc.catalog.clock()):
        raise _gone()
    record = await run_in_threadpool(svc.catalog.file, share.owner_id, share.name)
    if record is None:
        raise _gone()
    disposition = {"Content-Disposition": "attachment", **SAFE_HEADERS}
    if not_modified(request.headers.get("if-none-match"), record.md5):
        return Response(status_code=304, headers={"ETag": etag(record), **disposition})
    byte_range = wanted_range(record, request.headers.get("range"), request.headers.get("if-range"))
    if request.method == "HEAD":
        response = head_response(record, byte_range)
    else:
        if not await run_in_threadpool(count_download, svc.catalog, share):
            raise _gone()
        audit.record(
            "share.used", user_id=share.owner_id, share_id=share.id, name=share.name, range=byte_range is not None
        )
        reader = await run_in_threadpool(svc.store.open, record.location, *reader_bounds(byte_range))
        response = stream_response(record, byte_range, reader)
    response.headers.update(disposition)
    return response


def share_routes() -> list[Route]:
    """The routes, for the app's list."""
    return [
        Route("/shares", create, methods=["POST"]),
        Route("/shares", listing, methods=["GET"]),
        Route("/shares/{id}", revoke, methods=["DELETE"]),
        Route("/s/{link}", download, methods=["GET", "HEAD"]),
    ]
