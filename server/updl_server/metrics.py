"""Prometheus metrics: what the server does, for an operator's scraper (docs/operations.md, "Metrics").

Off unless the operator sets ``--metrics-token``: then ``GET /metrics`` answers
the Prometheus text format to a request bearing that token (a secret of its own,
never a user's token: a scraper can read counts, not files). While off, every
function here returns at once and no middleware is installed.

**Several workers.** ``--workers N`` forks processes that each count their own
requests; prometheus_client's multiprocess mode keeps each process's values in
memory-mapped files in one directory (``PROMETHEUS_MULTIPROC_DIR``, emptied by
``updl-server run`` before it forks) and a scrape, whichever worker answers it,
sums them. Gauges of things in flight count only live processes (``livesum``).

**Bounded labels.** A stranger chooses the path and the method of a request, so
neither becomes a label as sent: a request is labelled with the *template* of
the route it matched (``/files/{name}``), or ``unmatched``, and a method outside
HTTP's usual ones is ``other``.

Other modules count with one call each: ``metrics.upload_verified(size)``,
``metrics.upload_refused(reason)``, ``metrics.swept(files, size, kind=...)``.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import HTTPError

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own setting
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
# Seconds: API calls take milliseconds, transfers of large files minutes.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
# (route template, method) of the requests that move a file's bytes.
TRANSFERS = {
    ("/upload", "POST"): "upload",
    ("/files/{name}", "PUT"): "upload",
    ("/tus/", "POST"): "upload",
    ("/tus", "POST"): "upload",
    ("/tus/{upload_id}", "PATCH"): "upload",
    ("/files/{name}", "GET"): "download",
}
# How an error answer names its refusal of an upload (the 409's body has "expected" and "actual").
REFUSALS = {412: "precondition_failed", 413: "too_large", 460: "checksum_mismatch", 507: "insufficient_storage"}


class _Collectors:
    """The server's metrics, made once per process by :func:`configure`."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        kw: dict[str, Any] = {"registry": registry}
        self.requests = Counter("updl_http_requests", "HTTP requests answered.", ["method", "route", "status"], **kw)
        self.duration = Histogram(
            "updl_http_request_duration_seconds",
            "From the request's arrival to the end of its answer's body.",
            ["method", "route"],
            buckets=DURATION_BUCKETS,
            **kw,
        )
        self.received = Counter("updl_http_received_bytes", "Request body bytes received.", ["route"], **kw)
        self.sent = Counter("updl_http_sent_bytes", "Response body bytes sent.", ["route"], **kw)
        self.in_flight = Gauge(
            "updl_transfers_in_flight",
            "Uploads and downloads being transferred now.",
            ["direction"],
            multiprocess_mode="livesum",
            **kw,
        )
        self.verified = Counter("updl_uploads_verified", "Uploads verified against their MD5 and stored.", **kw)
        self.verified_bytes = Counter("updl_uploads_verified_bytes", "Bytes of the uploads verified and stored.", **kw)
        self.refused = Counter("updl_uploads_refused", "Uploads refused, by reason.", ["reason"], **kw)
        self.swept_files = Counter("updl_swept_files", "Things removed by sweeps, by kind.", ["kind"], **kw)
        self.swept_bytes = Counter("updl_swept_bytes", "Bytes freed by sweeps, by kind.", ["kind"], **kw)


@dataclass
class _State:
    collectors: _Collectors
    registry: CollectorRegistry  # what a scrape renders


_state: _State | None = None


def configure(enabled: bool, multiprocess_dir: Path | None = None) -> None:
    """Turn metrics on or off for this process (``create_app`` calls it in each worker).

    With ``multiprocess_dir`` (several workers) values go to that directory and a
    scrape sums every process's files; it must be the directory in ``PROMETHEUS_MULTIPROC_DIR``.
    """
    global _state
    disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream; no *_created series
    if not enabled:
        _state = None
        return
    if multiprocess_dir is None:
        registry = CollectorRegistry()
        _state = _State(_Collectors(registry), registry)
        return
    os.environ[MULTIPROCESS_ENV] = str(multiprocess_dir)
    if not getattr(values.ValueClass, "_multiprocess", False):
        # prometheus_client picks its value class when first imported; ours may predate the setting.
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]  # untyped upstream
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(multiprocess_dir))  # type: ignore[no-untyped-call]  # untyped upstream
    _state = _State(_Collectors(None), registry)


def prepare_multiprocess_dir(path: Path) -> None:
    """Create ``path`` or empty it of an earlier run's files, before any worker starts."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def enabled() -> bool:
    """Whether this process counts."""
    return _state is not None


def watch(collector: Collector) -> None:
    """Add a collector read at scrape time (a figure the catalog knows, not this process)."""
    if _state is not None:
        _state.registry.register(collector)


def upload_verified(size: int) -> None:
    """An upload matched its MD5 and was stored."""
    if _state is not None:
        _state.collectors.verified.inc()
        _state.collectors.verified_bytes.inc(size)


def upload_refused(reason: str) -> None:
    """An upload was refused (``md5_mismatch``, ``too_large``, ``precondition_failed``, ...)."""
    if _state is not None:
        _state.collectors.refused.labels(reason).inc()


def refusal_reason(status: int, body: dict[str, Any]) -> str | None:
    """The reason an error answer to an upload refuses it (``md5_mismatch``, ...), or ``None``."""
    if status == 409 and "expected" in body and "actual" in body:
        return "md5_mismatch"
    if status == 412 and "current_md5" not in body:
        return None  # tus: no Tus-Resumable, not a condition on the file
    return REFUSALS.get(status)


def swept(files: int, size: int = 0, *, kind: str = "expired_file") -> None:
    """A sweep removed ``files`` things of ``kind`` holding ``size`` bytes (0 if unknown)."""
    if _state is not None and (files or size):
        _state.collectors.swept_files.labels(kind).inc(files)
        _state.collectors.swept_bytes.labels(kind).inc(size)


def render() -> bytes:
    """The Prometheus text exposition of every metric (blocking: reads files in multiprocess mode)."""
    assert _state is not None
    return generate_latest(_state.registry)


class GaugeOf(Collector):
    """A gauge whose value a function reads at scrape time (e.g. a catalog count)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """Expose ``read()`` as gauge ``name``."""
        self.name = name
        self.documentation = documentation
        self.read = read

    def collect(self) -> Iterable[Metric]:
        """One sample: the value now."""
        yield GaugeMetricFamily(self.name, self.documentation, value=self.read())

    def describe(self) -> Iterable[Metric]:
        """The gauge without reading it (so registering does not query the catalog)."""
        yield GaugeMetricFamily(self.name, self.documentation)


# the route


async def serve_metrics(request: Request) -> Response:
    """``GET /metrics``: the text format, to the bearer of the metrics token only."""
    wanted: str | None = request.app.state.services.config.metrics_token
    if wanted is None or _state is None:
        raise HTTPError(404, "metrics are off: start the server with --metrics-token (docs/operations.md)")
    scheme, _, offered = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(offered.strip().encode(), wanted.encode()):
        raise HTTPError(
            401,
            "metrics need 'Authorization: Bearer <the server's --metrics-token>' (not a user's token)",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body = await run_in_threadpool(render)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


# the middleware


def route_template(routes: Iterable[BaseRoute], scope: Scope) -> str:
    """The path template of the route ``scope`` is for (a 405 counts as its route), or ``unmatched``."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.NONE:
            continue
        if isinstance(route, Mount):
            template = route.path + "/{path}"
        elif isinstance(route, Route):
            template = _plain(route.path)
        else:
            template = UNMATCHED
        if match == Match.FULL:
            return template
        partial = partial or template
    return partial or UNMATCHED


def _plain(path: str) -> str:
    """``/files/{name:updl_name}`` → ``/files/{name}``: the template without convertors."""
    out, _, rest = path.partition("{")
    while rest:
        param, _, tail = rest.partition("}")
        out += "{" + param.split(":", 1)[0] + "}"
        text, _, rest = tail.partition("{")
        out += text
    return out


class RequestMetrics:
    """ASGI middleware counting every HTTP request: status, duration, bytes, transfers in flight."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        """Wrap ``app``, whose requests are labelled by ``routes``' templates."""
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count one request (or pass anything else through)."""
        if scope["type"] != "http" or _state is None:
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(_state.collectors, scope, route_template(self.routes, scope))

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                exchange.received += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
            elif message["type"] == "http.response.body":
                exchange.sent += len(message.get("body", b""))
                if not message.get("more_body", False):
                    exchange.finish()  # before the last byte leaves: a client that has the answer sees it counted
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            exchange.finish()  # no complete answer (an exception: the 500 is sent outside us; a disconnect)


class _Exchange:
    """One request being counted; ``finish`` records it once."""

    def __init__(self, collectors: _Collectors, scope: Scope, route: str) -> None:
        self.collectors = collectors
        self.method = scope["method"] if scope["method"] in METHODS else "other"
        self.route = route
        self.started = time.perf_counter()
        self.status = 500
        self.received = 0
        self.sent = 0
        direction = TRANSFERS.get((route, self.method))
        self.transfer = None if direction is None else collectors.in_flight.labels(direction)
        if self.transfer is not None:
            self.transfer.inc()
        self.finished = False

    def finish(self) -> None:
        """Record the request (only the first call counts)."""
        if self.finished:
            return
        self.finished = True
        c = self.collectors
        if self.transfer is not None:
            self.transfer.dec()
        c.requests.labels(self.method, self.route, str(self.status)).inc()
        c.duration.labels(self.method, self.route).observe(time.perf_counter() - self.started)
        if self.received:
            c.received.labels(self.route).inc(self.received)
        if self.sent:
            c.sent.labels(self.route).inc(self.sent)
