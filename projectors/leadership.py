"""One active projector at a time: a PostgreSQL session advisory lock decides which.

Any number of projector processes may run (compose `--scale projector=2`). Each waits for the
lock on a connection of its own; the one holding it projects and publishes, the others stand
by, each blocked in `pg_advisory_lock` for up to `POLL_SECONDS` at a time (`lock_timeout`), so
they notice a stop between waits. The lock lives exactly as long as the holder's session:
`kill -9` of the active projector (or its host) ends the session, PostgreSQL releases the lock,
and a waiting standby has it at once, before a restarted process could even connect. The
holder checks its lock connection every
`CHECK_SECONDS`; when that connection is gone (a PostgreSQL restart, a network cut) it stops
projecting at once, since another process may hold the lock by now, and stands by again.

The lock is for efficiency, not correctness: even two projectors at once could not apply an
event twice, because each batch's tracking rows are inserted, not upserted, in the batch's
transaction (one of the two fails and rolls back), and NATS deduplicates republished events by
their log position (`Nats-Msg-Id`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import psycopg

log = logging.getLogger("parley.projector")
PROJECTOR_LOCK = 0x7061726C6579504A  # "parleyPJ"
POLL_SECONDS = 1.0
CHECK_SECONDS = 1.0


@contextlib.asynccontextmanager
async def leadership(database_url: str, stop: asyncio.Event) -> AsyncIterator[asyncio.Event]:
    """Wait until this process holds the projector lock (or `stop` is set); yields an event
    that is set when the lock may have been lost. Leaving the block releases the lock."""
    lost = asyncio.Event()
    async with await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, application_name="parley-projector-lock") as conn:
        await conn.execute(f"SET lock_timeout = {int(POLL_SECONDS * 1000)}")
        announced = False
        while not stop.is_set():
            try:
                await conn.execute("SELECT pg_advisory_lock(%s)", (PROJECTOR_LOCK,))
                break
            except psycopg.errors.LockNotAvailable:
                pass  # still held after a poll's wait: look at `stop`, then wait again
            if not announced:
                log.info("another projector is active; standing by")
                announced = True
        if stop.is_set():
            yield lost
            return
        log.info("this projector is active")
        watcher = asyncio.create_task(_watch(conn, lost))
        try:
            yield lost
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


async def _watch(conn: psycopg.AsyncConnection, lost: asyncio.Event) -> None:
    """Set `lost` once the lock's session is gone (the lock went with it)."""
    try:
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            await asyncio.wait_for(conn.execute("SELECT 1"), CHECK_SECONDS * 5)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("the projector lock's connection failed (%s): stepping down",
                    type(exc).__name__)
        lost.set()
