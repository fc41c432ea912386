"""HTTP plumbing: the session, URLs, timeouts, and the one place errors are translated.

:meth:`Transport.request` sends each request exactly once: the session keeps
requests' default of no retries (no urllib3 ``Retry`` on the adapter). Every
retry happens in the one loop of :mod:`updl.sdk.retry`, around whole
operations, so that ``--retries``, the ``on_retry`` reports and
``UpdlError.attempts`` all count the requests actually sent. A second layer
here would multiply the attempts (4 x 4 requests for ``retries=3``), hide them
from ``on_retry``, and ignore a per-call ``retries``. Uploads need the loop
anyway: it rebuilds the body for each attempt, as a streamed body cannot be
replayed.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import requests

from .config import Settings, format_size
from .errors import (
    AuthenticationError,
    BadRequestError,
    ChecksumMismatchError,
    ConnectionFailedError,
    ForbiddenError,
    InsufficientStorageError,
    InvalidSettingsError,
    NotFoundError,
    OffsetConflictError,
    PreconditionFailedError,
    ProtocolError,
    QuotaExceededError,
    RangeNotSatisfiableError,
    RateLimitedError,
    ServerError,
    TlsError,
    TooLargeError,
    UpdlError,
    UploadBusyError,
)
from .headers import parse_retry_after
from .version import __version__

__all__ = ["Transport", "build_session", "file_path", "json_object", "translate"]

TOKEN_HINT = "run `updl-server add-user NAME` on the server to get one and pass it with --token or UPDL_TOKEN"
# A token is only known to the data dir (or database) add-user wrote it to.
REJECTED_HINT = (
    "check that it belongs to this server: `updl-server add-user NAME` must run with the "
    "server's own --data-dir (or --db-url), and its token be passed with --token or UPDL_TOKEN"
)


def build_session() -> requests.Session:
    """A session that sends each request once (requests' default adapter: no retries)."""
    session = requests.Session()
    session.headers["User-Agent"] = f"updl/{__version__}"
    return session


def file_path(route: str, name: str) -> str:
    """``/<route>/<name>`` with the name percent-encoded, ``/`` kept (the API's convention)."""
    return f"/{route}/{quote(name, safe='/')}"


def json_object(response: requests.Response) -> dict[str, Any]:
    """The response's JSON object; :class:`ProtocolError` if the body is not one (not an updl server?)."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ProtocolError(
            f"the server at {response.url} did not answer with updl's JSON; "
            "check that --url / UPDL_URL points at an updl server",
            response=response,
        )
    return data


def _error_body(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


_ERRNO_REASON = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def _reason(exc: requests.RequestException) -> str:
    """A short reason for a connection failure, instead of urllib3's nested repr."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.ReadTimeout):
        return "no answer in time (read timeout)"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection broke during the transfer"
    match = _ERRNO_REASON.search(str(exc))
    if match:
        return match.group(1).strip().lower()
    text = str(exc)
    return text if len(text) < 200 else type(exc).__name__


# Error texts of TLS spoken to a server that answers in plain HTTP (OpenSSL 1.1 / 3.x).
_PLAIN_HTTP = re.compile(
    r"wrong.version.number|record.layer.failure|unknown.protocol|packet.length.too.long", re.IGNORECASE
)
_SSL_REASON = re.compile(r"\[SSL: [A-Z_]+\] ([^(]+?) \(_ssl")
_ROUTE = re.compile(r"^(.*?)/(files|info|upload|tus|health)(/|$)")


def _tls_error(exc: requests.exceptions.SSLError, server: str, ca_bundle: str | None) -> TlsError:
    text = str(exc)
    if server.startswith("https://") and _PLAIN_HTTP.search(text):
        return TlsError(
            f"TLS handshake with {server} failed: is the server speaking HTTPS? "
            f"For a plain-HTTP server use {'http://' + server[len('https://') :]}"
        )
    match = _SSL_REASON.search(text)
    reason = match.group(1).strip() if match else type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        if ca_bundle is None:
            fix = (
                "if the server uses its own CA (a self-signed deployment), pass --ca-bundle / "
                "UPDL_CA_BUNDLE (or ca_bundle in the config file) with the server's CA certificate"
            )
        else:
            fix = f"check that {ca_bundle} holds the CA that signed the server's certificate"
        return TlsError(f"the certificate of {server} does not verify ({reason}); {fix}")
    return TlsError(
        f"TLS handshake with {server} failed: {reason}; check the URL and the server's "
        "certificate (--ca-bundle / UPDL_CA_BUNDLE names the CA to trust)"
    )


def _may_be_updl_404(response: requests.Response, body: dict[str, Any]) -> bool:
    """Whether a 404 without a ``name`` can still be updl's "no such file".

    updl's 404s name what is missing (``name``, ``upload`` for tus, ``token_id``, ``share_id``). A HEAD answer has no
    body to tell, and a redirected request (a presigned S3 URL) was not answered by updl at all.
    """
    if response.history:
        return True
    if response.request is not None and response.request.method == "HEAD":
        return _is_json(response)
    return False


def _not_updl_message(response: requests.Response, message: str) -> str:
    """For a 404 on a route every updl server has: the URL points at something else."""
    url = response.url.split("?", 1)[0]
    match = _ROUTE.match(url)
    base = match.group(1) if match else url
    method = response.request.method if response.request is not None else "GET"
    answer = message if _is_json(response) else "not a JSON answer"
    return (
        f"{base} does not look like an updl server: {method} {url} answered 404 ({answer}); "
        "--url / UPDL_URL must be the server's root URL, e.g. http://HOST:8000"
    )


def _is_json(response: requests.Response) -> bool:
    return "json" in response.headers.get("Content-Type", "")


def _quota_exceeded(message: str, body: dict[str, Any], **kwargs: Any) -> QuotaExceededError:
    """507 with quota fields: what the quota is and how much of it is used, in the message too."""
    fields = {key: body.get(key) for key in ("quota_bytes", "used_bytes", "quota_files", "used_files")}
    numbers = {key: value if type(value) is int else None for key, value in fields.items()}
    parts = []
    if numbers["quota_bytes"] is not None and numbers["used_bytes"] is not None:
        parts.append(f"{format_size(numbers['used_bytes'])} of {format_size(numbers['quota_bytes'])} used")
    if numbers["quota_files"] is not None and numbers["used_files"] is not None:
        parts.append(f"{numbers['used_files']} of {numbers['quota_files']} files")
    detail = f" ({', '.join(parts)})" if parts else ""
    return QuotaExceededError(f"{message}{detail}; nothing was stored", **numbers, **kwargs)


def translate(source: requests.Response | requests.RequestException, *, ca_bundle: str | None = None) -> UpdlError:
    """The updl error for an error response (status >= 400) or a ``requests`` exception.

    ``ca_bundle``: the CA bundle the request was verified with, for the advice on a certificate
    that does not verify.

    The only place HTTP statuses and ``requests`` exceptions become updl errors.
    Callers ``raise translate(exc) from exc``.
    """
    if isinstance(source, requests.RequestException):
        exc = source
        if isinstance(
            exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)
        ):
            return InvalidSettingsError(f"invalid server URL: {exc}")
        url = exc.request.url if exc.request is not None else "the server"
        server = re.sub(r"^(https?://[^/]+).*$", r"\1", url or "")
        if isinstance(exc, requests.exceptions.SSLError):
            return _tls_error(exc, server, ca_bundle)
        if isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)):
            return ConnectionFailedError(
                f"cannot reach the server at {server}: {_reason(exc)}; "
                "check --url / UPDL_URL and that the server is running"
            )
        return UpdlError(f"request failed: {exc}")

    response = source
    status = response.status_code
    body = _error_body(response)
    message = str(body.get("error") or response.reason or f"HTTP {status}")
    kwargs: dict[str, Any] = {"response": response, "status": status}
    if status in (401, 403):
        had_token = "Authorization" in response.request.headers if response.request else True
        if not had_token:
            return AuthenticationError(f"no token given; {TOKEN_HINT}", **kwargs)
        if status == 403:
            scope = body.get("missing_scope")
            return ForbiddenError(
                f"access denied: {message}",
                missing_scope=scope if isinstance(scope, str) else None,
                **kwargs,
            )
        if body.get("reason") in ("revoked", "expired", "disabled"):  # a token that was good
            return AuthenticationError(f"the server rejected the token: {message}", **kwargs)
        return AuthenticationError(f"the server rejected the token; {REJECTED_HINT}", **kwargs)
    if status == 404:
        name = body.get("name")
        if (
            name is None
            and not {"upload", "token_id", "share_id"} & body.keys()
            and not _may_be_updl_404(response, body)
        ):
            return InvalidSettingsError(_not_updl_message(response, message), **kwargs)
        return NotFoundError(f"{message}: {name}" if name else message, **kwargs)
    if status == 409 and ("offset" in body or "sent" in body):
        # The same status answers a tus PATCH at the wrong offset and a whole file whose MD5
        # does not match: the server's body tells them apart (docs/api.md).
        offset = body.get("offset")
        return OffsetConflictError(
            f"the upload is not at the offset sent ({message})",
            offset=offset if type(offset) is int else None,
            **kwargs,
        )
    if status == 409:
        return ChecksumMismatchError(
            f"checksum mismatch (server: {message})",
            expected=body.get("expected"),
            actual=body.get("actual"),
            **kwargs,
        )
    if status == 413:
        max_size = body.get("max_size")
        limit = f" (limit {format_size(max_size)})" if isinstance(max_size, int) else ""
        return TooLargeError(f"{message}{limit}", max_size=max_size if isinstance(max_size, int) else None, **kwargs)
    if status == 412 and "current_md5" in body:
        name, current = body.get("name"), body.get("current_md5")
        current = current if isinstance(current, str) else None
        sent = response.request.headers if response.request is not None else {}
        if current is None:
            what = f"{name} does not exist on the server"
        elif "If-Match" in sent:
            what = f"{name} on the server is another version (md5 {current})"
        else:
            what = f"{name} already exists on the server (md5 {current})"
        return PreconditionFailedError(
            f"{what}; nothing was stored ({message})",
            name=name if isinstance(name, str) else None,
            current_md5=current,
            **kwargs,
        )
    if status == 416:
        return RangeNotSatisfiableError(message, **kwargs)
    if status == 460:  # tus: the PATCH body does not match its Upload-Checksum
        offset = body.get("offset")
        where = f" at offset {offset}" if type(offset) is int else ""
        return ChecksumMismatchError(f"a chunk{where} was corrupted in transit (server: {message})", **kwargs)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 423:
        return UploadBusyError(
            f"another request is writing to this resumable upload ({message}); try again shortly",
            retry_after=retry_after,
            **kwargs,
        )
    if status == 429:
        return RateLimitedError(
            f"the server is rate limiting ({message}); try again later", retry_after=retry_after, **kwargs
        )
    if status == 507 and ("quota_bytes" in body or "quota_files" in body):
        return _quota_exceeded(message, body, **kwargs)
    if status == 507:
        return InsufficientStorageError(message, **kwargs)
    if status >= 500:
        return ServerError(
            f"server error {status}: {message}; try again later or check the server's log",
            retry_after=retry_after,
            **kwargs,
        )
    return BadRequestError(message, **kwargs)


class Transport:
    """Sends requests to one server: base URL, auth header, timeouts, error translation."""

    def __init__(
        self,
        settings: Settings,
        session: requests.Session | None = None,
        *,
        session_factory: Callable[[], requests.Session] = build_session,
    ) -> None:
        """Use ``session`` as it is, or make one with ``session_factory`` (and close it in :meth:`close`)."""
        self.settings = settings
        self.base_url = settings.url.rstrip("/")
        self.session = session if session is not None else session_factory()
        self._owns_session = session is None
        self._session_factory = session_factory
        self._headers = {"User-Agent": f"updl/{__version__}"}
        # Only when set: ``verify=True`` on the request would override a caller's ``session.verify``;
        # left out, requests also honours REQUESTS_CA_BUNDLE (a path given here wins over it).
        self._verify: dict[str, Any] = {"verify": settings.ca_bundle} if settings.ca_bundle else {}
        if settings.token:
            self._headers["Authorization"] = f"Bearer {settings.token}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        session: requests.Session | None = None,
    ) -> requests.Response:
        """Send the request once and return the response; raise the translated error for
        failures and statuses >= 400. Retrying is the caller's (:func:`~updl.sdk.retry.run_with_retries`).

        ``session``: send it through this one (a worker thread's, :meth:`worker_session`) instead."""
        try:
            response = (session or self.session).request(
                method,
                self.base_url + path,
                params=params,
                data=data,
                headers={**self._headers, **(headers or {})},
                timeout=self.settings.timeout,
                stream=stream,
                **self._verify,
            )
        except requests.RequestException as exc:
            raise translate(exc, ca_bundle=self.settings.ca_bundle) from exc
        if response.status_code >= 400:
            error = translate(response)
            response.close()
            raise error
        return response

    @contextlib.contextmanager
    def worker_session(self) -> Iterator[requests.Session]:
        """A session for one worker thread, kept for its requests (keep-alive) and closed after.

        ``requests.Session`` is not guaranteed thread-safe, so each thread gets its own from the
        session factory; a session the caller passed in cannot be copied and is shared as it is.
        """
        if not self._owns_session:
            yield self.session
            return
        session = self._session_factory()
        try:
            yield session
        finally:
            session.close()

    def close(self) -> None:
        """Close the session if this transport made it."""
        if self._owns_session:
            self.session.close()
