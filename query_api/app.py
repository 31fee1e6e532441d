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
from query_api.context import Context, replica_fallback
from shared.jwt.tokens import TokenService
from shared.postgres.positions import (
    REPLICA_TIMEOUT,
    PositionWaiter,
    log_head,
    projection_health,
)
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
    replicated = bool(settings.read_database_url)
    state: dict[str, Context] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # With a replica the primary serves sessions, log heads and the reads the replica
        # cannot: few connections kept open, as many as the replica's should it fail over.
        pool = AsyncConnectionPool(settings.database_url, min_size=1 if replicated else 2,
                                   max_size=settings.db_pool_size, open=False, kwargs=AUTOCOMMIT)
        await pool.open(wait=True)
        replica = None
        if replicated:  # opened without waiting: a replica that is down must not stop us
            # a read waits REPLICA_TIMEOUT at most for a replica connection, then the primary
            # serves it (replica_fallback): never the pool's default 30 s for a dead replica
            replica = AsyncConnectionPool(settings.read_database_url, min_size=2,
                                          max_size=settings.db_pool_size, open=False,
                                          timeout=REPLICA_TIMEOUT, kwargs=AUTOCOMMIT)
            await replica.open()
        waiter = PositionWaiter(settings.database_url, settings.read_database_url,
                                settings.replica_wait)
        await waiter.start()
        storage = Storage(settings) if settings.s3_endpoint else None
        # sessions on the primary: a logout answers once the primary shows it ended
        ctx = Context(settings=settings, pool=pool, tokens=tokens, waiter=waiter,
                      sessions=EndedSessions(pool), storage=storage,
                      primary=pool if replicated else None, replica=replica)
        app.state.context = state["ctx"] = ctx
        # checked after a database error (shared/web/endpoints.py)
        app.state.pools = [pool, replica]
        try:
            yield
        finally:
            await waiter.stop()
            if replica is not None:
                await replica.close()
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
        found = _replica_report(ctx.waiter)
        with contextlib.suppress(psycopg.Error):
            async with ctx.pool.connection() as conn:
                health = await projection_health(conn)
            PROJECTION_SKIPPED.set(health["skipped_events"])
            PROJECTION_FAILING.set(len(health["failing"]))
            found["projections"] = health
        return found

    handlers = {op: replica_fallback(handler) for op, handler in HANDLERS.items()} \
        if replicated else HANDLERS
    return Starlette(routes=[*api_routes(handlers), *docs.routes(), *webclient.routes(settings),
                             *service_routes(ready, report)],
                     lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS,
                     middleware=middleware(settings, "query"))


def _replica_report(waiter: PositionWaiter) -> dict[str, Any]:
    """The replica as the reads see it (it never makes this API unready: the primary serves
    the reads while it is away)."""
    if not waiter.has_replica:
        return {}
    return {"replica": {"reachable": waiter.replica_reachable,
                        "position": waiter.replica_position, "lag": waiter.replica_lag}}
