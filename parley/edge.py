"""The public edge of `parley up`: one port, writes to the command API, reads to the query API.

In production a reverse proxy does this routing between separate containers (compose.yaml);
for the embedded runtime the same service apps are composed in one process per worker, which
saves a network hop and a proxy process on a laptop. The routing rule is the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from command_api.app import create_app as create_command_app
from gateway.app import create_app as create_gateway_app
from query_api.app import create_app as create_query_app
from shared.settings import Settings
from shared.web.service import metrics_process_exit

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Edge:
    """Routes by method: GET/HEAD/OPTIONS to the query API, writes to the command API."""

    def __init__(self, command: Starlette, query: Starlette, gateway: Starlette) -> None:
        self.command = command
        self.query = query
        self.gateway = gateway

    def route(self, scope: Scope) -> ASGIApp:
        if scope["type"] == "websocket":
            return self.gateway
        if scope["method"] in WRITE_METHODS:
            return self.command
        return self.query

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        await self.route(scope)(scope, receive, send)

    @contextlib.asynccontextmanager
    async def _services(self) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for app in (self.command, self.query, self.gateway):
                await stack.enter_async_context(app.router.lifespan_context(app))
            yield

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        started = False
        try:
            async with self._services():
                await send({"type": "lifespan.startup.complete"})
                started = True
                message = await receive()
                assert message["type"] == "lifespan.shutdown"
        except Exception as exc:
            failed = "lifespan.shutdown.failed" if started else "lifespan.startup.failed"
            await send({"type": failed, "message": repr(exc)})
            raise
        metrics_process_exit()
        await send({"type": "lifespan.shutdown.complete"})


def create_app() -> Edge:
    """`uvicorn parley.edge:create_app --factory`."""
    settings = Settings.from_env()
    return Edge(create_command_app(settings), create_query_app(settings),
                create_gateway_app(settings))
