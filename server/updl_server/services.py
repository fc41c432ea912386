"""What the routes share: the configuration, the catalog and the blob store, on the app's state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from .auth import authenticate
from .catalog import Catalog
from .config import ServerConfig
from .storage import BlobStore


@dataclass(frozen=True)
class Services:
    """What routes need, hung on ``app.state.services``."""

    config: ServerConfig
    catalog: Catalog
    store: BlobStore
    presign: Callable[[str, str], str] | None = None  # location, name -> URL (redirects)

    async def owner(self, request: Request) -> int:
        """The authenticated user's id (401 otherwise)."""
        return await authenticate(self.catalog, request.headers.get("authorization"))


def services(request: Request) -> Services:
    """The app's services, from a request."""
    found: Services = request.app.state.services
    return found
