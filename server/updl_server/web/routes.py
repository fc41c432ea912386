"""The page's routes: ``/`` (the page itself) and ``/web/...`` (its scripts, styles, libraries)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
PAGE_PREFIX = "/web"


async def page(request: Request) -> Response:
    """``GET /``: the page; revalidated on every load so an upgraded server is seen at once."""
    return FileResponse(
        STATIC / "index.html", media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )


def web_routes() -> list[BaseRoute]:
    """The page at ``/`` and its files under ``/web/`` (no auth: they hold no user data)."""
    return [
        Route("/", page, methods=["GET", "HEAD"]),
        Mount(PAGE_PREFIX, app=StaticFiles(directory=STATIC), name="web"),
    ]
