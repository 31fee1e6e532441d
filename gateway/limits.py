"""What one gateway process lets clients hold: sockets per user, and resumes running at once.

Both are per process, not global: gateway processes share nothing (README, "NATS subjects"),
and a count kept elsewhere (NATS, PostgreSQL) would need cleaning up after a process dies.
`parley up` serves `/ws` from each of its API workers, so a user may hold up to
`workers x WS_MAX_SOCKETS_PER_USER` sockets there; compose runs one gateway process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from prometheus_client import Gauge

RESUMES = Gauge("parley_ws_resumes", "WebSocket resumes replaying the stream, or waiting to",
                ["state"], multiprocess_mode="livesum")


class ResumesBusyError(Exception):
    """No resume slot became free within the wait."""


class Limits:
    """Counts sockets per user and bounds concurrent resumes (one event loop: no locks)."""

    def __init__(self, sockets_per_user: int, concurrent_resumes: int,
                 resume_wait: float) -> None:
        self.sockets_per_user = sockets_per_user
        self.resume_wait = resume_wait
        self._sockets: dict[int, int] = {}
        self._resumes = asyncio.Semaphore(concurrent_resumes)

    def open_socket(self, user_id: int) -> bool:
        """Count one more socket of the user; False (nothing counted) when it is at the limit."""
        count = self._sockets.get(user_id, 0)
        if count >= self.sockets_per_user:
            return False
        self._sockets[user_id] = count + 1
        return True

    def close_socket(self, user_id: int) -> None:
        count = self._sockets.get(user_id, 0) - 1
        if count > 0:
            self._sockets[user_id] = count
        else:
            self._sockets.pop(user_id, None)

    def sockets(self, user_id: int) -> int:
        return self._sockets.get(user_id, 0)

    @contextlib.asynccontextmanager
    async def resume_slot(self) -> AsyncIterator[None]:
        """Hold one of the resume slots; ResumesBusyError if none frees up within the wait.

        A resume from an old cursor reads and decodes the stream from there on: the bound
        keeps a burst of them (every client reconnecting after an outage) from taking the
        event loop from live delivery. The excess waits, then is told to come back.
        """
        RESUMES.labels("waiting").inc()
        try:
            async with asyncio.timeout(self.resume_wait):
                await self._resumes.acquire()
        except TimeoutError:
            raise ResumesBusyError(f"no resume slot within {self.resume_wait:g}s") from None
        finally:
            RESUMES.labels("waiting").dec()
        RESUMES.labels("replaying").inc()
        try:
            yield
        finally:
            RESUMES.labels("replaying").dec()
            self._resumes.release()
