"""The query API's ASGI app: `uvicorn query_api.app:create_app --factory`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.routing import Route

from query_api import docs, users
from query_api.context import Context
from shared.http import EXCEPTION_HANDLERS
from shared.positions import PositionWaiter
from shared.service import middleware, service_routes
from shared.settings import Settings
from shared.tokens import TokenService

API = "/api/v1"

ROUTES = [
    Route(f"{API}/users/me", users.me, methods=["GET"]),
    Route(f"{API}/users/{{user_id}}", users.profile, methods=["GET"]),
]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    settings.require("database_url", "jwt_key_file")
    state: dict[str, Context] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(settings.database_url, min_size=2,
                                   max_size=settings.db_pool_size, open=False)
        await pool.open(wait=True)
        waiter = PositionWaiter(settings.database_url)
        await waiter.start()
        ctx = Context(settings=settings, pool=pool, tokens=TokenService(settings), waiter=waiter)
        app.state.context = state["ctx"] = ctx
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
        except Exception as exc:
            return f"read models unavailable: {type(exc).__name__}"
        return None

    return Starlette(routes=[*ROUTES, *docs.routes(), *service_routes(ready)],
                     lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS,
                     middleware=middleware(settings, "query"))
