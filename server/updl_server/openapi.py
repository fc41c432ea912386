"""The OpenAPI 3.1 description of the whole HTTP API, served at ``GET /openapi.json``.

Kept by hand beside docs/api.md (the contract in prose) rather than generated
from the handlers: the routes parse headers and stream bodies themselves, so
nothing in their signatures says what they take. A test walks the app's routes
and fails when a route or method is missing here or listed here but not served
(tests/server/test_openapi.py), and validates the document.

Every ``GET`` route also answers ``HEAD`` (Starlette does), so every ``GET``
operation has a ``HEAD`` twin, made by :func:`_head_of`.
"""

from __future__ import annotations

from copy import deepcopy
from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import __version__

JSON = "application/json"
Op = dict[str, Any]

_ERROR = {"$ref": "#/components/schemas/Error"}
_FILE_INFO = {"$ref": "#/components/schemas/FileInfo"}
_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "The file's name; may contain '/' (send it unescaped or as %2F).",
    "schema": {"type": "string", "maxLength": 1024},
}
_UPLOAD_ID = {"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string"}}
_TUS_RESUMABLE = {
    "name": "Tus-Resumable",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "const": "1.0.0"},
}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _header(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ERROR}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    """The error answers an operation can give, each with the JSON error body."""
    described = {
        "400": "Malformed request (a field, a name, a number); `field` names it.",
        "401": "Missing, malformed, unknown, revoked or expired token.",
        "403": "The token's scopes or prefix do not allow this (`missing_scope`).",
        "404": "No such file, upload or route.",
        "409": "Checksum failed (`expected`, `actual`), or a tus offset conflict (`offset`).",
        "410": "The share link expired, was revoked or is used up.",
        "412": "A precondition failed (`current_md5`), or no `Tus-Resumable: 1.0.0`.",
        "413": "Larger than the server's limit (`max_size`).",
        "416": "Range not satisfiable.",
        "423": "The upload is busy with another request (`Retry-After`).",
        "460": "The PATCH body does not match `Upload-Checksum`.",
        "507": "The server's disk is full; nothing was kept.",
    }
    return {str(status): _error(described[str(status)]) for status in statuses}


def _op(op_id: str, summary: str, responses: dict[str, Any], *, auth: bool = True, **extra: Any) -> Op:
    """An operation; with ``auth`` it needs the bearer token and may answer 401."""
    operation: Op = {"operationId": op_id, "summary": summary, "responses": dict(responses)}
    if auth:
        operation["responses"].update(_errors(401))
    else:
        operation["security"] = []
    operation.update(extra)
    return operation


def _head_of(get: Op) -> Op:
    """The ``HEAD`` twin of a ``GET``: same parameters and statuses, headers only."""
    head = deepcopy(get)
    head["operationId"] = "head" + get["operationId"][0].upper() + get["operationId"][1:]
    head["summary"] = get["summary"] + " (headers only)"
    for response in head["responses"].values():
        response.pop("content", None)
    return head


def _with_head(get: Op) -> dict[str, Op]:
    return {"get": get, "head": _head_of(get)}


_UPLOAD_ANSWERS = {"200": _json("Verified and stored.", _FILE_INFO), **_errors(400, 409, 412, 413, 507)}
_CONDITIONS = [
    _header("If-Match", 'Replace only this version: `"<md5>"`, a list, or `*` (exists).'),
    _header("If-None-Match", "`*`: create only (refuse an existing name)."),
]
_ATTRIBUTE_HEADERS = [
    _header("Updl-Mode", "Permission bits to record, octal (`0644`)."),
    _header("Updl-Mtime", "Modification time to record, RFC 3339."),
    _header("Updl-Expires-In", "Seconds until the server deletes the file (retention)."),
]
_TUS_OPTIONS = _op(
    "tusOptions",
    "tus discovery: versions, extensions, the size limit, checksum algorithms.",
    {"204": {"description": "What the server supports (Tus-Version, Tus-Extension, Tus-Max-Size)."}},
    auth=False,
)
_TUS_CREATE = _op(
    "tusCreate",
    "Create a resumable upload (tus creation, creation-with-upload).",
    {
        "201": {"description": "Created; `Location` is the upload's URL."},
        **_errors(400, 409, 412, 413, 460, 507),
        "431": _error("Upload-Metadata too long (`max_metadata_bytes`)."),
    },
    parameters=[
        _TUS_RESUMABLE,
        _header("Upload-Length", "The file's size in bytes.", required=True),
        _header("Upload-Metadata", "tus metadata: `name` (or `filename`), optional `md5`."),
        _header("Upload-Md5", "The whole file's MD5 (updl extension), when this body completes the upload."),
        _header("Upload-Checksum", "`<algorithm> <base64>` of this body."),
    ],
    requestBody={
        "required": False,
        "content": {"application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
)


@cache
def spec() -> dict[str, Any]:
    """The whole document (built once)."""
    paths: dict[str, dict[str, Op]] = {
        "/health": _with_head(
            _op(
                "health",
                "Liveness and the server's version.",
                {"200": _json("Up.", {"$ref": "#/components/schemas/Health"})},
                auth=False,
            )
        ),
        "/upload": {
            "post": _op(
                "upload",
                "Upload a file as a multipart form (`file`, `md5`, optional `name`); verified before it is stored.",
                _UPLOAD_ANSWERS,
                parameters=_CONDITIONS,
                requestBody={
                    "required": True,
                    "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/UploadForm"}}},
                },
            )
        },
        "/files": _with_head(
            _op(
                "listFiles",
                "The caller's files by name, paged; with `delimiter`, folders as `prefixes`.",
                {"200": _json("One page.", {"$ref": "#/components/schemas/FileList"}), **_errors(400)},
                parameters=[
                    _query("prefix", "Only names starting with this."),
                    _query("delimiter", "Roll names up to the first delimiter after the prefix (1-16 characters)."),
                    _query("limit", "Page size, 1 to 1000.", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _query("cursor", "`next_cursor` of the previous page."),
                ],
            )
        ),
        "/usage": _with_head(
            _op(
                "usage",
                "How many of the caller's files start with `prefix`, and their total size.",
                {"200": _json("The totals.", {"$ref": "#/components/schemas/Usage"})},
                parameters=[_query("prefix", "Only names starting with this.")],
            )
        ),
        "/files/{name}": {
            **_with_head(
                _op(
                    "download",
                    "A file's bytes (Range, If-Range, If-None-Match supported).",
                    {
                        "200": {
                            "description": "The whole file; `ETag` is its quoted MD5, `Content-MD5` its digest.",
                            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                        },
                        "206": {"description": "The range asked for (`Content-Range`)."},
                        "304": {"description": "Not modified (`If-None-Match` matched)."},
                        "307": {"description": "Redirect to a presigned store URL (S3 with presigned downloads)."},
                        **_errors(400, 404, 416),
                    },
                    parameters=[
                        _NAME,
                        _header("Range", "`bytes=a-b`, `bytes=a-` or `bytes=-n` (one range)."),
                        _header("If-Range", "Honour Range only if the ETag still matches."),
                        _header("If-None-Match", "304 when the current version matches."),
                    ],
                )
            ),
            "put": _op(
                "putFile",
                "Upload a file as the raw body; `Content-MD5` is verified when sent.",
                _UPLOAD_ANSWERS,
                parameters=[
                    _NAME,
                    _header("Content-MD5", "Base64 of the body's 16-byte MD5."),
                    _header("Repr-Digest", "RFC 9530 claim of the file's `sha-256` and/or `md5`, verified."),
                    _header("Content-Digest", "RFC 9530 claim of the body's digests (the whole file here)."),
                    *_CONDITIONS,
                    *_ATTRIBUTE_HEADERS,
                ],
                requestBody={
                    "required": True,
                    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                },
            ),
            "post": _op(
                "linkByContent",
                "Upload by content: store the name as content the caller already holds (same size and "
                "SHA-256, and MD5 when given); no byte of the file is sent. 404: upload it instead.",
                {
                    "200": _json("Linked: the new file.", _FILE_INFO),
                    **_errors(400, 404, 412, 507),
                },
                parameters=[_NAME, *_CONDITIONS, *_ATTRIBUTE_HEADERS],
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ContentOffer"}}},
                },
            ),
            "delete": _op(
                "deleteFile",
                "Delete a file.",
                {"204": {"description": "Deleted."}, **_errors(400, 404)},
                parameters=[_NAME],
            ),
        },
        "/info/{name}": _with_head(
            _op(
                "info",
                "One file's FileInfo.",
                {"200": _json("The file.", _FILE_INFO), **_errors(400, 404)},
                parameters=[_NAME],
            )
        ),
        "/metrics": _with_head(
            _op(
                "metrics",
                "Prometheus metrics (text format), for the bearer of the server's --metrics-token only.",
                {
                    "200": {
                        "description": "The metrics.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _error("No, or the wrong, metrics token."),
                    "404": _error("Metrics are off (no --metrics-token)."),
                },
                auth=False,
                security=[{"metricsToken": []}],
            )
        ),
        "/openapi.json": _with_head(
            _op(
                "openapi",
                "This document.",
                {"200": _json("The OpenAPI 3.1 description of the API.", {"type": "object"})},
                auth=False,
            )
        ),
        "/whoami": _with_head(
            _op(
                "whoami",
                "The caller: user, this token's scopes, prefix and expiry, usage against quota.",
                {"200": _json("Who the token is.", {"type": "object"})},
            )
        ),
        "/tokens": {
            **_with_head(
                _op(
                    "listTokens",
                    "The caller's tokens (never their secrets).",
                    {"200": _json("The tokens.", {"type": "object"}), **_errors(403)},
                )
            ),
            "post": _op(
                "createToken",
                "A new token for the caller, with no more power than the caller's (the secret is shown once).",
                {"201": _json("The token and its description.", {"type": "object"}), **_errors(400, 403, 413)},
                requestBody={
                    "required": False,
                    "content": {
                        JSON: {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "scopes": {"type": "array", "items": {"enum": ["read", "write", "delete"]}},
                                    "prefix": {"type": "string"},
                                    "expires_in": {"type": "string", "description": "A duration: 1h, 30d, ..."},
                                    "label": {"type": "string"},
                                },
                            }
                        }
                    },
                },
            ),
        },
        "/tokens/{token_id}": {
            "delete": _op(
                "revokeToken",
                "Revoke one of the caller's tokens.",
                {"204": {"description": "Revoked."}, **_errors(403, 404)},
                parameters=[{"name": "token_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            )
        },
        "/shares": {
            **_with_head(
                _op(
                    "listShares",
                    "The caller's share links (never their secrets), with download counts.",
                    {"200": _json("The links.", {"type": "object"}), **_errors(403)},
                )
            ),
            "post": _op(
                "createShare",
                "A link that downloads one of the caller's files without a token (the URL is shown once).",
                {"201": _json("The link, with its `url`.", {"type": "object"}), **_errors(400, 403, 404)},
                requestBody={
                    "required": True,
                    "content": {
                        JSON: {
                            "schema": {
                                "type": "object",
                                "required": ["name", "expires_in"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "expires_in": {"type": "integer", "minimum": 1, "maximum": 2592000},
                                    "max_downloads": {"type": ["integer", "null"], "minimum": 1},
                                },
                            }
                        }
                    },
                },
            ),
        },
        "/shares/{id}": {
            "delete": _op(
                "revokeShare",
                "Revoke one of the caller's share links.",
                {"204": {"description": "Revoked."}, **_errors(403, 404)},
                parameters=[{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            )
        },
        "/s/{link}": _with_head(
            _op(
                "shareDownload",
                "A shared file, without a token (`Range`, `If-None-Match`; served as an attachment, sandboxed).",
                {
                    "200": {"description": "The file."},
                    "206": {"description": "The requested range."},
                    "304": {"description": "Not modified."},
                    **_errors(404, 410, 416),
                },
                auth=False,
                parameters=[{"name": "link", "in": "path", "required": True, "schema": {"type": "string"}}],
            )
        ),
        "/tus/": {"post": _TUS_CREATE, "options": _TUS_OPTIONS},
        "/tus": {"post": _alias(_TUS_CREATE), "options": _alias(_TUS_OPTIONS)},
        "/tus/{upload_id}": {
            "head": _op(
                "tusHead",
                "How far a resumable upload is (a completed one: what it stored).",
                {"200": {"description": "`Upload-Offset`, `Upload-Length`, `Upload-Expires`."}, **_errors(404, 412)},
                parameters=[_UPLOAD_ID, _TUS_RESUMABLE],
            ),
            "patch": _op(
                "tusPatch",
                "Append the body at `Upload-Offset`; the last one completes (and verifies) the upload.",
                {
                    "204": {"description": "Appended; the new `Upload-Offset`."},
                    **_errors(400, 404, 409, 412, 423, 460, 507),
                },
                parameters=[
                    _UPLOAD_ID,
                    _TUS_RESUMABLE,
                    _header("Upload-Offset", "Where this body starts.", required=True),
                    _header("Upload-Checksum", "`<algorithm> <base64>` of this body."),
                    _header("Upload-Md5", "The whole file's MD5 (updl extension), on the PATCH that completes it."),
                ],
                requestBody={
                    "required": True,
                    "content": {"application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                },
            ),
            "delete": _op(
                "tusTerminate",
                "Abandon a resumable upload (tus termination).",
                {"204": {"description": "Gone."}, **_errors(404, 412, 423)},
                parameters=[_UPLOAD_ID, _TUS_RESUMABLE],
            ),
            "options": _op(
                "tusUploadOptions",
                "tus discovery, on an upload's URL.",
                {"204": {"description": "What the server supports."}},
                auth=False,
                parameters=[_UPLOAD_ID],
            ),
        },
        "/": _with_head(
            _op(
                "page",
                "The browser page (HTML).",
                {"200": {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}}},
                auth=False,
            )
        ),
        "/web/{path}": _with_head(
            _op(
                "pageAsset",
                "The page's scripts, styles and libraries.",
                {"200": {"description": "The file."}, "404": _error("No such file.")},
                auth=False,
                parameters=[{"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}],
            )
        ),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "updl",
            "version": __version__,
            "summary": "Integrity-first file transfer: MD5-verified uploads and downloads.",
            "description": "The contract in prose is docs/api.md; every error answer is JSON with `error`.",
        },
        "paths": paths,
        "security": [{"bearerToken": []}],
        "components": {"securitySchemes": _SECURITY, "schemas": _SCHEMAS},
    }


def _alias(operation: Op) -> Op:
    """The same operation on ``/tus`` (no trailing slash): its own operation id."""
    copy = deepcopy(operation)
    copy["operationId"] += "NoSlash"
    return copy


_SECURITY = {
    "bearerToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A user's token, `updl_<id>_<secret>` (`updl-server add-user NAME`).",
    },
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The server's --metrics-token (not a user's token).",
    },
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "What went wrong, for a human."}},
        "additionalProperties": True,
        "description": "Every error answer; some add fields (`name`, `field`, `expected`, `actual`, `max_size`, ...).",
    },
    "FileInfo": {
        "type": "object",
        "required": ["name", "size", "md5", "created", "last_accessed"],
        "properties": {
            "name": {"type": "string"},
            "size": {"type": "integer", "minimum": 0},
            "md5": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "sha256": {
                "type": ["string", "null"],
                "pattern": "^[0-9a-f]{64}$",
                "description": "Computed by the server; null for files stored before it did.",
            },
            "created": {"type": "string", "format": "date-time"},
            "last_accessed": {"type": ["string", "null"], "format": "date-time"},
            "expires": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "When the server deletes it; null: kept until deleted.",
            },
            "mode": {
                "type": ["string", "null"],
                "pattern": "^0[0-7]{3}$",
                "description": "Permission bits the client recorded (octal), if it did.",
            },
            "mtime": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "Modification time the client recorded, if it did.",
            },
        },
    },
    "FileList": {
        "type": "object",
        "required": ["files", "next_cursor"],
        "properties": {
            "files": {"type": "array", "items": _FILE_INFO},
            "prefixes": {"type": "array", "items": {"type": "string"}, "description": "Only with `delimiter`."},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
    "Usage": {
        "type": "object",
        "required": ["prefix", "files", "bytes"],
        "properties": {
            "prefix": {"type": "string"},
            "files": {"type": "integer", "minimum": 0},
            "bytes": {"type": "integer", "minimum": 0},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "version"],
        "properties": {"status": {"type": "string", "const": "ok"}, "version": {"type": "string"}},
    },
    "ContentOffer": {
        "type": "object",
        "required": ["size", "sha256"],
        "properties": {
            "size": {"type": "integer", "minimum": 0},
            "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
            "md5": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"},
        },
    },
    "UploadForm": {
        "type": "object",
        "required": ["file", "md5"],
        "properties": {
            "file": {
                "type": "string",
                "format": "binary",
                "description": "The bytes; its filename is the default name.",
            },
            "md5": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"},
            "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "Optional claim, verified."},
            "name": {"type": "string", "description": "The name to store under (send it before `file`)."},
            "mode": {"type": "string", "description": "Permission bits to record, octal (`0644`); before `file`."},
            "mtime": {"type": "string", "description": "Modification time to record, RFC 3339; before `file`."},
        },
    },
}


async def serve_openapi(request: Request) -> Response:
    """``GET /openapi.json``: the document (no auth: it describes the API, not anyone's data)."""
    return JSONResponse(spec())
