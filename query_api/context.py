"""Per-process resources of the query API, the read-your-writes gate, and the choice of the
database a read is served from (the primary, or a streaming replica: READ_DATABASE_URL)."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import psycopg
from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request
from starlette.responses import Response

from shared.jwt.tokens import TokenClaims, TokenService
from shared.postgres.positions import PRIMARY, REPLICA, Database, PositionWaiter, log_head
from shared.postgres.sessions import EndedSessions
from shared.s3.storage import Storage
from shared.settings import Settings
from shared.web.endpoints import ApiError, authenticate, check_pool

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]

# A replica read fails so when the replica went away, or when its replay cancelled the query
# (a conflict with recovery, SQLSTATE 40001): the primary can serve it.
REPLICA_FAILURES = (psycopg.OperationalError, psycopg.errors.SerializationFailure)


@dataclass
class Context:
    """Connection pools, token verifier and position waiter of one query API process.

    `pool` is what a handler reads from: the primary's, or for a read `reader` sends to the
    replica, the replica's. Sessions and the log head are always asked of the primary."""

    settings: Settings
    pool: AsyncConnectionPool
    tokens: TokenService
    waiter: PositionWaiter
    sessions: EndedSessions
    storage: Storage | None = None
    primary: AsyncConnectionPool | None = None  # None: `pool`, there is no replica
    replica: AsyncConnectionPool | None = None


async def reader(request: Request) -> tuple[Context, TokenClaims]:
    """Authenticate the caller, honour `X-Min-Position` (bounded wait) and pick the database
    the read is served from."""
    ctx: Context = request.app.state.context
    claims = await authenticate(request, ctx.tokens, ctx.sessions)
    raw = request.headers.get("x-min-position")
    position = None
    if raw is not None:
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
            raise ApiError(400, "X-Min-Position must be a non-negative integer")
        position = int(raw)
    replica_ok = ctx.replica is not None and not getattr(request.state, "replica_failed", False)
    source = await _source(ctx, position, replica_ok)
    request.state.database = source
    if source == REPLICA and ctx.replica is not None:
        return dataclasses.replace(ctx, pool=ctx.replica), claims
    return ctx, claims


async def _source(ctx: Context, position: int | None, replica_ok: bool) -> Database:
    """The replica while it is reachable and, for `X-Min-Position: N`, has reached N (waiting
    up to REPLICA_WAIT); else the primary, after its usual bounded wait. Never a database
    older than N: a read that waited in vain goes to the primary, the freshest there is."""
    waiter = ctx.waiter
    replica_ok = replica_ok and waiter.replica_reachable
    if position is None:
        return REPLICA if replica_ok else PRIMARY
    if replica_ok and waiter.replica_position >= position:
        return REPLICA
    if position > waiter.position:
        # A position beyond the log's end is no write's, and waiting cannot reach it: the
        # bounded wait is cut short and the read served at once, as after a timeout. The end
        # is the primary's: a replica's log may lag, and would call a real write's unreachable.
        async with (ctx.primary or ctx.pool).connection() as conn:
            if position > await log_head(conn):
                return PRIMARY
    reached = await waiter.wait_for(position, ctx.settings.consistency_timeout,
                                    replica=replica_ok)
    return REPLICA if reached == REPLICA else PRIMARY


def replica_fallback(handler: Handler) -> Handler:
    """Serve a read again from the primary when the replica failed it (GETs are pure reads,
    so running one twice changes nothing)."""

    @functools.wraps(handler)
    async def read(request: Request) -> Response:
        try:
            return await handler(request)
        except REPLICA_FAILURES as exc:
            if getattr(request.state, "database", PRIMARY) != REPLICA:
                raise
            log.warning("%s: the replica failed the read (%s: %s); serving it from the primary",
                        request.url.path, type(exc).__name__, exc)
            replica = request.app.state.context.replica
            check_pool(replica)
            request.state.replica_failed = True
            return await handler(request)

    return read
