"""What the routes share: the configuration, the catalog and the blob store, on the app's state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from .access import Grant
from .auth import authenticate
from .catalog import Catalog
from .config import ServerConfig
from .names import validate_name
from .storage import BlobStore


@dataclass(frozen=True)
class Services:
    """What routes need, hung on ``app.state.services``."""

    config: ServerConfig
    catalog: Catalog
    store: BlobStore
    presign: Callable[[str, str], str] | None = None  # location, name -> URL (redirects)

    async def grant(self, request: Request, scope: str | None = None, name: str | None = None) -> Grant:
        """The request's token (401 otherwise), which must have ``scope`` for ``name`` (403 otherwise)."""
        found = await authenticate(self.catalog, request.headers.get("authorization"))
        if scope is not None:
            found.require(scope, name)
        return found

    async def owner_of(self, request: Request, scope: str) -> tuple[int, str]:
        """The user's id and the route's ``{name}``: 401 first, then 400 for a bad name, then 403
        unless the token has ``scope`` for that name (see ``access.py``)."""
        found = await self.grant(request)
        name = validate_name(request.path_params["name"])
        found.require(scope, name)
        return found.user_id, name


def services(request: Request) -> Services:
    """The app's services, from a request."""
    found: Services = request.app.state.services
    return found
