"""The query API's ASGI app: `uvicorn query_api.app:create_app --factory`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette

from query_api import attachments, chats, docs, history, messages, search, users, webclient
from query_api.context import Context
from shared.jwt.tokens import TokenService
from shared.postgres.positions import PositionWaiter, log_head, projection_health
from shared.postgres.sessions import EndedSessions
from shared.s3.storage import Storage
from shared.settings import AUTOCOMMIT, Settings
from shared.web.endpoints import EXCEPTION_HANDLERS, check_pool
from shared.web.routes import api_routes
from shared.web.service import PROJECTION_FAILING, PROJECTION_SKIPPED, middleware, service_routes

# The operations this service serves (paths and methods: shared/openapi), by id.
HANDLERS = {
    "get_users_me": users.me,
    "get_users_user_id": users.profile,
    "get_chats": chats.list_chats,
    "get_chats_chat_id": chats.get_chat,
    "get_chats_chat_id_members": chats.list_members,
    "get_messages": messages.list_messages,
    "get_messages_message_id": messages.get_message,
    "get_attachments_attachment_id": attachments.get_attachment,
    "get_messages_message_id_history": history.message_history,
    "get_search_messages": search.search_messages,
}


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
        app.state.pools = [pool]  # checked after a database error (shared/web/endpoints.py)
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

    return Starlette(routes=[*api_routes(HANDLERS), *docs.routes(), *webclient.routes(settings),
                             *service_routes(ready, report)],
                     lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS,
                     middleware=middleware(settings, "query"))
