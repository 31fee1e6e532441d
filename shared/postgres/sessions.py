"""Ended login sessions, as the APIs and the gateway check access tokens against them.

Access tokens name their login session (`sid`). Logging out (or a detected refresh-token
reuse) ends the session; the projector lists it in `ended_sessions`, and from then on every
token of that session is refused: HTTP answers 401, the gateway closes sockets with 4401.
An ended session never comes back, so positive answers are cached; negative ones are not.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

import psycopg
from psycopg_pool import AsyncConnectionPool

from shared.jwt.tokens import TokenClaims

CACHE_SIZE = 10_000


class EndedSessions:
    """Answers whether a token's session ended, from the `ended_sessions` read model.

    Every answer reads the table after the request asked (so a logout that answered 204 is
    seen by every process at once), but the requests waiting at one moment share one query:
    under load a worker sends one `= ANY(...)` for all of them, not one each.
    """

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self._ended: dict[UUID, None] = {}  # insertion-ordered: the oldest goes first
        self._pending: dict[UUID, asyncio.Future[bool]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def ended(self, claims: TokenClaims) -> bool:
        """True if the token's session was logged out or revoked (False for no session)."""
        return await self.session_ended(claims.session_id)

    async def session_ended(self, session_id: str | None) -> bool:
        if session_id is None:
            return False
        try:
            session = UUID(session_id)
        except ValueError:
            return True  # a session no login ever started: as good as ended
        if session in self._ended:
            return True
        future = self._pending.get(session)
        if future is None:
            future = self._pending[session] = asyncio.get_running_loop().create_future()
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read())
        return await asyncio.shield(future)  # one caller giving up must not cancel the others

    async def _read(self) -> None:
        """Answer the waiting sessions, a query per round, until none is waiting."""
        await asyncio.sleep(0)  # let the other requests of this moment join the first query
        while self._pending:
            asked, self._pending = self._pending, {}
            try:
                ended = await self._query(list(asked))
            except Exception as exc:
                for future in asked.values():
                    if not future.done():
                        future.set_exception(exc)
                continue
            for session, future in asked.items():
                if session in ended:
                    self._remember(session)
                if not future.done():
                    future.set_result(session in ended)

    async def _query(self, sessions: list[UUID]) -> set[UUID]:
        try:
            async with self.pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT session_id FROM ended_sessions WHERE session_id = ANY(%s)",
                    (sessions,))
                return {row[0] for row in await cursor.fetchall()}
        except psycopg.errors.UndefinedTable:
            return set()  # no projector has run yet, so no session has ended

    def _remember(self, session: UUID) -> None:
        if len(self._ended) >= CACHE_SIZE:
            self._ended.pop(next(iter(self._ended)))
        self._ended[session] = None
