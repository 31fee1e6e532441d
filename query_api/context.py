"""Per-process resources of the query API and the read-your-writes gate."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request

from shared.jwt.tokens import TokenClaims, TokenService
from shared.postgres.positions import PositionWaiter, log_head
from shared.postgres.sessions import EndedSessions
from shared.s3.storage import Storage
from shared.settings import Settings
from shared.web.endpoints import ApiError, authenticate


@dataclass
class Context:
    """Connection pool, token verifier and position waiter of one query API process."""

    settings: Settings
    pool: AsyncConnectionPool
    tokens: TokenService
    waiter: PositionWaiter
    sessions: EndedSessions
    storage: Storage | None = None


async def reader(request: Request) -> tuple[Context, TokenClaims]:
    """Authenticate the caller and honour `X-Min-Position` (bounded wait) before a read."""
    ctx: Context = request.app.state.context
    claims = await authenticate(request, ctx.tokens, ctx.sessions)
    raw = request.headers.get("x-min-position")
    if raw is not None:
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
            raise ApiError(400, "X-Min-Position must be a non-negative integer")
        position = int(raw)
        if position > ctx.waiter.position:
            # A position beyond the log's end is no write's, and waiting cannot reach it: the
            # bounded wait is cut short and the read served at once, as after a timeout.
            async with ctx.pool.connection() as conn:
                reachable = position <= await log_head(conn)
            if reachable:
                await ctx.waiter.wait_for(position, ctx.settings.consistency_timeout)
    return ctx, claims
