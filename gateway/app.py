"""The gateway's ASGI app: `uvicorn gateway.app:create_app --factory` (or inside parley.edge).

Run uvicorn with `--ws-ping-interval 20 --ws-ping-timeout 20 --ws-max-size 65536`: uvicorn's
protocol pings are the server keepalive (Starlette has no ping API), and the size limit makes
uvicorn refuse an oversized frame (1009) before buffering it; the session checks it too.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NATS
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.auth import admit, refuse
from gateway.connection import Connection, Hub
from gateway.feed import Feed
from gateway.limits import Limits
from gateway.live import LiveRelay
from gateway.presence import Presence
from gateway.protocol import CLOSE_MALFORMED, CLOSE_TOO_MANY, parse_cursor
from gateway.router import Router
from gateway.titles import DirectChatTitles
from shared.jwt.tokens import TokenService
from shared.postgres.sessions import EndedSessions
from shared.settings import AUTOCOMMIT, Settings
from shared.web import logfilter
from shared.web.service import middleware, service_routes

log = logging.getLogger("parley.gateway")
# How long start-up waits for the stream (created by the projector) before going on without
# it; the feed keeps trying and /readyz says so meanwhile.
STREAM_WAIT_SECONDS = 30.0


@dataclass
class Context:
    """The per-process resources: one NATS connection and what sessions share."""

    nc: NATS
    hub: Hub
    presence: Presence


async def connect_nats(settings: Settings) -> NATS:
    """One connection per process that reconnects forever; the feed resumes where it stopped."""
    async def error(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    async def disconnected() -> None:
        if not nc.is_closed:
            log.warning("nats: disconnected, reconnecting")

    async def reconnected() -> None:
        log.info("nats: reconnected")

    nc = await nats.connect(servers=settings.nats_servers, name="parley-gateway",
                            max_reconnect_attempts=-1, reconnect_time_wait=0.5, error_cb=error,
                            disconnected_cb=disconnected, reconnected_cb=reconnected)
    return nc


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    settings.require("nats_url", "database_url")
    tokens = TokenService.verifier(settings)  # fails fast without a key
    cors = settings.cors
    logfilter.install()
    state: dict[str, Context] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nc = await connect_nats(settings)
        router = Router()
        # Read-only: sessions read their memberships (presence writes have a pool of their own).
        # Always the primary, never READ_DATABASE_URL: a socket reads a little, once, and its
        # membership snapshot then never trails the live stream by a replica's lag.
        pool = AsyncConnectionPool(settings.database_url, min_size=1, max_size=4, open=False,
                                   kwargs={"options": "-c default_transaction_read_only=on",
                                           **AUTOCOMMIT})
        # Presence is the one thing the gateway writes, to tables of its own (gateway/presence.py).
        presence_pool = AsyncConnectionPool(settings.database_url, min_size=1, max_size=2,
                                            open=False, kwargs=AUTOCOMMIT)
        titles = DirectChatTitles(pool)
        feed = Feed(nc, settings.nats_stream, router, titles)
        relay = LiveRelay(nc, router)
        presence = Presence(presence_pool, settings.presence_ttl, relay.presence)
        try:
            await pool.open(wait=True)
            await presence_pool.open(wait=True)
            await relay.start()
            await presence.start()
            await feed.start(wait=STREAM_WAIT_SECONDS)
            hub = Hub(router=router, tokens=tokens, feed=feed, pool=pool, titles=titles,
                      js=nc.jetstream(), stream=settings.nats_stream,
                      sessions=EndedSessions(pool),
                      limits=Limits(settings.ws_max_sockets_per_user,
                                    settings.ws_max_concurrent_resumes,
                                    settings.ws_resume_wait),
                      live=relay, typing_interval=settings.typing_interval)
            state["ctx"] = Context(nc=nc, hub=hub, presence=presence)
            yield
        finally:
            state.pop("ctx", None)
            await presence.stop()
            await relay.stop()
            await feed.stop()
            await nc.close()
            await pool.close()
            await presence_pool.close()

    async def ready() -> str | None:
        ctx = state.get("ctx")
        if ctx is None:
            return "starting"
        if not ctx.nc.is_connected:
            return "nats disconnected"
        if not ctx.hub.feed.live.is_set():
            return f"waiting for stream {settings.nats_stream}"
        return None

    async def live(websocket: WebSocket) -> None:
        ctx = state["ctx"]
        with contextlib.suppress(WebSocketDisconnect):
            claims = await admit(websocket, ctx.hub.tokens, cors)
            if claims is None:
                return
            raw = websocket.query_params.getlist("cursor")
            cursor = parse_cursor(raw[0]) if len(raw) == 1 else None
            if raw and cursor is None:
                await refuse(websocket, CLOSE_MALFORMED, "cursor must be a cursor we sent")
                return
            limits = ctx.hub.limits
            if not limits.open_socket(claims.user_id):
                await refuse(websocket, CLOSE_TOO_MANY, "too many connections: at most "
                             f"{limits.sockets_per_user} per user")
                return
            ctx.presence.opened(claims.user_id)
            try:
                await Connection(websocket, claims, ctx.hub, cursor).serve()
            finally:
                ctx.presence.closed(claims.user_id)
                limits.close_socket(claims.user_id)

    return Starlette(routes=[WebSocketRoute("/ws", live), *service_routes(ready)],
                     lifespan=lifespan, middleware=middleware(settings, "gateway"))
