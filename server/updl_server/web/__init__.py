"""The browser client: the page at ``/``, its static files under ``/web/``, CORS and the
security headers every answer carries (docs/api.md, "Browsers").

The page and its scripts ship inside this package (``static/``; third-party libraries in
``static/vendor/``, copied there by ``scripts/vendor-web.sh``), so it needs no build step and
no network. The page talks to the same API as every client, with the token in an
``Authorization`` header; the server gives it no cookie and no other privilege.
"""

from .headers import SecurityHeaders, cors_middleware
from .routes import web_routes

__all__ = ["SecurityHeaders", "cors_middleware", "web_routes"]
