"""Upload by content: offer a file's digests before sending it; content the server holds is linked.

Before the bytes of a file of at least :data:`DEDUP_THRESHOLD` go out, the
client hashes it (SHA-256, the key; MD5 would cost 2.5 times as much) and
sends ``POST /files/{name}`` with ``{"size", "sha256"}``. A server that holds
that content *for this user* points the name at it and answers the new
FileInfo: no byte moves. A 404 ("no such content"), or a server that does not
know the route (405), means "upload as usual", and the SHA-256 just computed
becomes the upload's claim, so the server verifies it too (the MD5 is computed
while sending, as always). The offer costs one local read of the file and one
round trip; it is skipped for small files (where sending is as cheap as
asking) and for standard input (a pipe cannot be read twice).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from .errors import PreconditionFailedError, ProtocolError, UpdlError
from .hashing import digest_file
from .models import FileInfo
from .retry import Retrier
from .transport import Transport, file_path, json_object

__all__ = ["DEDUP_THRESHOLD", "dedup_candidate", "offer"]

#: Files smaller than this are sent without an offer: the round trip would cost about as much.
DEDUP_THRESHOLD = 1024 * 1024
# 404: the server holds no such content; 405/501: it does not know upload by content.
_NOT_LINKED = (404, 405, 501)


def dedup_candidate(source: object, threshold: int = DEDUP_THRESHOLD) -> Path | None:
    """The path to offer, when ``source`` is a regular file path of at least ``threshold`` bytes."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    path = Path(source)
    try:
        return path if path.is_file() and path.stat().st_size >= threshold else None
    except OSError:
        return None


def offer(
    transport: Transport,
    retrier: Retrier,
    name: str,
    size: int,
    digests: Mapping[str, str],
    conditions: Mapping[str, str] | None = None,
) -> FileInfo | None:
    """Ask the server to link ``name`` to content it holds with these digests; the FileInfo, or None.

    ``digests`` needs ``sha256`` (and gives ``md5`` if known). ``conditions``
    (``If-None-Match``/``If-Match``) apply as to an upload. A linked file of
    another size or SHA-256 than offered is a ``ProtocolError``.
    """
    body = {"size": size, "sha256": digests["sha256"], **({"md5": digests["md5"]} if "md5" in digests else {})}

    def attempt(number: int) -> FileInfo | None:
        try:
            response = transport.request(
                "POST",
                file_path("files", name),
                data=json.dumps(body),
                headers={"Content-Type": "application/json", **(conditions or {})},
            )
        except PreconditionFailedError:
            if number > 1:  # an earlier attempt linked it but its answer was lost: that is success
                current = FileInfo.from_json(json_object(transport.request("GET", file_path("info", name))))
                if (current.size, current.sha256) == (size, digests["sha256"]):
                    return current
            raise
        except UpdlError as exc:
            if exc.status in _NOT_LINKED:
                return None
            raise
        linked = FileInfo.from_json(json_object(response))
        if (linked.size, linked.sha256) != (size, digests["sha256"]):
            raise ProtocolError(f"the server linked {name!r} to other content (sha256 {linked.sha256})")
        return linked

    return retrier.run(attempt, name)


def offer_file(
    transport: Transport,
    retrier: Retrier,
    path: Path,
    name: str,
    conditions: Mapping[str, str] | None = None,
) -> tuple[FileInfo | None, dict[str, str]]:
    """Hash ``path`` (SHA-256 only: about 2.5 times as fast as MD5 here) and offer it; the linked
    FileInfo (or None) and the digests."""
    size = path.stat().st_size
    digests = digest_file(path, ("sha256",))
    return offer(transport, retrier, name, size, digests, conditions), digests
