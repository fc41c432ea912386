"""``/whoami`` and ``/tokens``: a user's view of their own account and tokens.

Any valid token may call these (they act on the caller's account, not on
files). A token can mint only tokens it covers (``Grant.covers``: no scope it
lacks, no name outside its prefix, no later expiry), and revoke itself or a
token it covers; so a leaked read-only token cannot turn into a write token.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .access import MAX_LABEL, Grant, forbidden, parse_duration, parse_scopes, prefix_problem
from .accounts import Accounts
from .auth import issue_token
from .catalog import utcnow
from .errors import HTTPError, bad_request
from .formats import isoformat
from .services import services

MAX_BODY = 4096
TOKEN_ID_LENGTH = 16


async def whoami(request: Request) -> Response:
    """``GET /whoami``: the caller's user, this token's limits, and the account's usage."""
    svc = services(request)
    grant = await svc.grant(request)
    count, total = await run_in_threadpool(svc.catalog.usage, grant.user_id, "")
    return JSONResponse(
        {
            "user": grant.user,
            "token_id": grant.token_id,
            "scopes": list(grant.scopes),
            "prefix": grant.prefix,
            "expires": isoformat(grant.expires),
            "label": grant.label,
            "usage": {"files": count, "bytes": total},
        }
    )


async def list_tokens(request: Request) -> Response:
    """``GET /tokens``: the caller's tokens, revoked ones included."""
    svc = services(request)
    grant = await svc.grant(request)
    records = await run_in_threadpool(Accounts(svc.catalog).tokens, grant.user_id)
    return JSONResponse({"tokens": [r.to_json() for r in records]})


async def create_token(request: Request) -> Response:
    """``POST /tokens`` with JSON ``{"scopes", "prefix", "expires_in", "label"}`` (all optional).

    Unset limits are the caller's own; the answer carries the new token's
    ``token`` (its secret: shown this once) and its description.
    """
    svc = services(request)
    grant = await svc.grant(request)
    body = await _json_body(request)
    scopes = _scopes(body.get("scopes"), grant)
    prefix = _prefix(body.get("prefix"), grant)
    now = utcnow()
    expires = grant.expires
    if body.get("expires_in") is not None:
        expires = now + _duration(body["expires_in"])
    label = body.get("label")
    if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL):
        raise bad_request(f"label must be a string of at most {MAX_LABEL} characters", field="label")
    if not grant.covers(scopes, prefix, expires):
        raise forbidden(
            "a token cannot create a token with more power than its own (scopes, prefix or expiry)",
            missing_scope=next((s for s in scopes if s not in grant.scopes), None),
            scopes=list(grant.scopes),
            prefix=grant.prefix,
            expires=isoformat(grant.expires),
        )
    text, token_id = await run_in_threadpool(
        issue_token, svc.catalog, grant.user_id, scopes=scopes, prefix=prefix, label=label, expires=expires
    )
    record = await run_in_threadpool(Accounts(svc.catalog).token, token_id)
    assert record is not None
    return JSONResponse({"token": text, **record.to_json()}, status_code=201, headers={"Cache-Control": "no-store"})


async def revoke_token(request: Request) -> Response:
    """``DELETE /tokens/{id}``: revoke one of the caller's tokens (204; 404 if not theirs)."""
    svc = services(request)
    grant = await svc.grant(request)
    token_id = str(request.path_params["token_id"])
    accounts = Accounts(svc.catalog)
    record = await run_in_threadpool(accounts.token, token_id) if len(token_id) == TOKEN_ID_LENGTH else None
    if record is None or record.user_id != grant.user_id:
        raise HTTPError(404, "no such token", token_id=token_id[:TOKEN_ID_LENGTH])
    if record.id != grant.token_id and not grant.covers(record.scopes, record.prefix, record.expires):
        raise forbidden("a token can revoke itself or tokens with no more power than its own", token_id=token_id)
    await run_in_threadpool(accounts.revoke_token, token_id, utcnow(), user_id=grant.user_id)
    return Response(status_code=204)


async def tokens(request: Request) -> Response:
    """``/tokens``: one route for its methods, so a 405 lists them all in ``Allow``."""
    return await (list_tokens(request) if request.method == "GET" else create_token(request))


async def _json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, at most ``MAX_BODY`` bytes (400/413 otherwise; an empty body is ``{}``)."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise HTTPError(413, f"the request body may be at most {MAX_BODY} bytes", max_size=MAX_BODY)
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("the body must be a JSON object") from None
    if not isinstance(parsed, dict):
        raise bad_request("the body must be a JSON object")
    return parsed


def _scopes(value: Any, grant: Grant) -> tuple[str, ...]:
    if value is None:
        return grant.scopes
    text = ",".join(value) if isinstance(value, list) and all(isinstance(v, str) for v in value) else value
    if not isinstance(text, str):
        raise bad_request("scopes must be a list of strings or a comma-separated string", field="scopes")
    try:
        return parse_scopes(text)
    except ValueError as exc:
        raise bad_request(str(exc), field="scopes") from None


def _prefix(value: Any, grant: Grant) -> str | None:
    if value is None or value == "":
        return grant.prefix
    if not isinstance(value, str):
        raise bad_request("prefix must be a string", field="prefix")
    problem = prefix_problem(value)
    if problem is not None:
        raise bad_request(f"invalid prefix: {problem}", field="prefix", prefix=value[:MAX_LABEL])
    return value


def _duration(value: Any) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise bad_request("expires_in must be seconds or a duration such as 30d", field="expires_in")
    try:
        return parse_duration(f"{value}s" if isinstance(value, int) else value)
    except ValueError as exc:
        raise bad_request(str(exc), field="expires_in") from None


def account_routes() -> list[Route]:
    """The routes to mount in the app."""
    return [
        Route("/whoami", whoami, methods=["GET"]),
        Route("/tokens", tokens, methods=["GET", "POST"]),
        Route("/tokens/{token_id}", revoke_token, methods=["DELETE"]),
    ]
