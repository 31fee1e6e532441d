"""Ended login sessions, as the APIs and the gateway check access tokens against them.

Access tokens name their login session (`sid`). Logging out (or a detected refresh-token
reuse) ends the session; the projector lists it in `ended_sessions`, and from then on every
token of that session is refused: HTTP answers 401, the gateway closes sockets with 4401.
An ended session never comes back, so positive answers are cached; negative ones are not.
"""

from __future__ import annotations

from uuid import UUID

import psycopg
from psycopg_pool import AsyncConnectionPool

from shared.tokens import TokenClaims

CACHE_SIZE = 10_000


class EndedSessions:
    """Answers whether a token's session ended, from the `ended_sessions` read model."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self._ended: dict[UUID, None] = {}  # insertion-ordered: the oldest goes first

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
        try:
            async with self.pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT 1 FROM ended_sessions WHERE session_id = %s", (session,))
                found = await cursor.fetchone() is not None
        except psycopg.errors.UndefinedTable:
            return False  # no projector has run yet, so no session has ended
        if found:
            if len(self._ended) >= CACHE_SIZE:
                self._ended.pop(next(iter(self._ended)))
            self._ended[session] = None
        return found
