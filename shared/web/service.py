"""Pieces every HTTP service mounts: health, readiness, metrics, CORS and error handling."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.cors import EXPOSED_HEADERS, REQUEST_HEADERS
from shared.openapi.operations import OPERATIONS
from shared.settings import Settings

REQUESTS = Counter("parley_http_requests_total", "HTTP requests", ["service", "method", "status"])
LATENCY = Histogram("parley_http_request_seconds", "HTTP request latency", ["service", "method"])

PROJECTION_SKIPPED = Gauge("parley_projection_skipped_events",
                           "Events a projection skipped because it could not apply them",
                           multiprocess_mode="max")
PROJECTION_FAILING = Gauge("parley_projection_failing",
                           "Projections whose last batch failed and is being retried",
                           multiprocess_mode="max")

ReadyCheck = Callable[[], Awaitable[str | None]]
Report = Callable[[], Awaitable[dict[str, Any]]]  # extra facts for /readyz; updates gauges


class MetricsMiddleware:
    """Counts requests and their latency per service (route templates would be nicer)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            method = scope["method"]
            REQUESTS.labels(self.service, method, str(status)).inc()
            LATENCY.labels(self.service, method).observe(time.perf_counter() - start)


MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def render_metrics() -> bytes:
    """This process's metrics; with `PROMETHEUS_MULTIPROC_DIR` (set by `parley up` for its
    workers) the sum over every worker process sharing that directory, whichever answers."""
    if not os.environ.get(MULTIPROC_DIR):
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


def metrics_process_exit() -> None:
    """A worker stopping: its live gauges (open sockets) stop counting in the sum."""
    if os.environ.get(MULTIPROC_DIR):
        multiprocess.mark_process_dead(os.getpid())


def service_routes(ready: ReadyCheck, report: Report | None = None) -> list[BaseRoute]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        problem = await ready()
        if problem:
            return JSONResponse({"status": "unavailable", "detail": problem}, status_code=503)
        return JSONResponse({"status": "ready", **(await report() if report else {})})

    async def metrics(request: Request) -> Response:
        if report:
            await report()
        return Response(render_metrics(), media_type=CONTENT_TYPE_LATEST)

    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]


def api_methods() -> list[str]:
    """Every method of the public API (the operation table): what a preflight may ask for."""
    return sorted({op.method.upper() for op in OPERATIONS})


def middleware(settings: Settings, service: str) -> list[Middleware]:
    stack = [Middleware(MetricsMiddleware, service=service)]
    cors = settings.cors
    if cors.entries:  # none: same-origin pages only, which need no CORS
        # every service answers preflights for the whole API: a proxy or parley.edge sends
        # OPTIONS to one of them, whichever method the request it announces will use
        stack.append(Middleware(
            CORSMiddleware, **cors.middleware_options(), allow_methods=api_methods(),
            allow_headers=list(REQUEST_HEADERS), expose_headers=list(EXPOSED_HEADERS)))
    return stack
