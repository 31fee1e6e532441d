"""The query API's ASGI app: `uvicorn query_api.app:create_app --factory`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.routing import Route

from query_api import attachments, chats, docs, messages, users
from query_api.context import Context
from shared.http import EXCEPTION_HANDLERS, check_pool
from shared.positions import PositionWaiter, log_head, projection_health
from shared.service import PROJECTION_FAILING, PROJECTION_SKIPPED, middleware, service_routes
from shared.sessions import EndedSessions
from shared.settings import AUTOCOMMIT, Settings
from shared.storage import Storage
from shared.tokens import TokenService

API = "/api/v1"

ROUTES = [
    Route(f"{API}/users/me", users.me, methods=["GET"]),
    Route(f"{API}/users/{{user_id}}", users.profile, methods=["GET"]),
    Route(f"{API}/chats", chats.list_chats, methods=["GET"]),
    Route(f"{API}/chats/{{chat_id}}", chats.get_chat, methods=["GET"]),
    Route(f"{API}/chats/{{chat_id}}/members", chats.list_members, methods=["GET"]),
    Route(f"{API}/messages", messages.list_messages, methods=["GET"]),
    Route(f"{API}/messages/{{message_id}}", messages.get_message, methods=["GET"]),
    Route(f"{API}/attachments/{{attachment_id}}", attachments.get_attachment, methods=["GET"]),
]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    settings.require("database_url")
    tokens = TokenService.verifier(settings)  # fails fast without a key
    state: dict[str, Context] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(settings.database_url, min_size=2,
                                   max_size=settings.db_pool_size, open=False, kwargs=AUTOCOMMIT)
        await pool.open(wait=True)
        waiter = PositionWaiter(settings.database_url)
        await waiter.start()
        storage = Storage(settings) if settings.s3_endpoint else None
        ctx = Context(settings=settings, pool=pool, tokens=tokens, waiter=waiter,
                      sessions=EndedSessions(pool), storage=storage)
        app.state.context = state["ctx"] = ctx
        app.state.pools = [pool]  # checked after a database error (shared/http.py)
        try:
            yield
        finally:
            await waiter.stop()
            await pool.close()

    async def ready() -> str | None:
        ctx = state.get("ctx")
        if ctx is None:
            return "starting"
        try:
            async with ctx.pool.connection() as conn:
                await conn.execute("SELECT 1 FROM users LIMIT 1")
                head = await log_head(conn)
        except Exception as exc:
            check_pool(ctx.pool)
            return f"read models unavailable: {type(exc).__name__}"
        stalled = time.monotonic() - ctx.waiter.moved_at
        if head > ctx.waiter.position and stalled > settings.ready_max_stall:
            return (f"read models are not keeping up: at position {ctx.waiter.position} of"
                    f" {head}, no progress for {stalled:.0f} s (parley projections status)")
        return None

    async def report() -> dict[str, Any]:
        """How the projections fare (they never make this API unready: it serves what the
        read models hold, and the log keeps what a projection skipped; README operations)."""
        ctx = state.get("ctx")
        if ctx is None:
            return {}
        with contextlib.suppress(psycopg.Error):
            async with ctx.pool.connection() as conn:
                health = await projection_health(conn)
            PROJECTION_SKIPPED.set(health["skipped_events"])
            PROJECTION_FAILING.set(len(health["failing"]))
            return {"projections": health}
        return {}

    return Starlette(routes=[*ROUTES, *docs.routes(), *service_routes(ready, report)],
                     lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS,
                     middleware=middleware(settings, "query"))
