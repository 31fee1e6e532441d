"""Read-your-writes: wait until the read models have reached a log position.

The projector commits its tracking row and `NOTIFY parley_projected, '<position>'` in the same
transaction, so a notification means the rows are visible. One LISTEN connection per process
serves every waiting request; a slow poll covers notifications lost while reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import psycopg

CHANNEL = "parley_projected"
READMODELS = "readmodels"  # tracking name of the position every live projection has reached
TRACKING_TABLE = "projection_tracking"
EVENTS_TABLE = "parley_events"  # eventsourcing names it after the application, `Parley`
POLL_SECONDS = 1.0

log = logging.getLogger(__name__)


class PositionWaiter:
    """Tracks the projected position and lets requests wait (bounded) for a given one."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self.position = 0
        self.moved_at = time.monotonic()  # when `position` last moved (readiness)
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="position-waiter")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_for(self, position: int, timeout: float) -> bool:
        """True once the read models reached `position`; False after `timeout` seconds."""
        if self.position >= position:
            return True
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: self.position >= position)
            return True
        except TimeoutError:
            return False

    async def _advance(self, position: int) -> None:
        if position > self.position:
            self.position = position
            self.moved_at = time.monotonic()
            async with self._changed:
                self._changed.notify_all()

    async def _follow(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self._url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await self._advance(await _read_position(conn))
                    while True:
                        async for note in conn.notifies(timeout=POLL_SECONDS):
                            await self._advance(int(note.payload))
                        await self._advance(await _read_position(conn))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("position listener lost its connection; retrying", exc_info=True)
                await asyncio.sleep(0.5)


async def _read_position(conn: psycopg.AsyncConnection) -> int:
    try:
        cur = await conn.execute(
            f"SELECT notification_id FROM {TRACKING_TABLE} WHERE application_name = %s",
            (READMODELS,))
    except psycopg.errors.UndefinedTable:
        return 0
    row = await cur.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


async def log_head(conn: psycopg.AsyncConnection) -> int:
    """The last position in the event log (0 for an empty or missing log)."""
    try:
        cur = await conn.execute(f"SELECT max(notification_id) FROM {EVENTS_TABLE}")
    except psycopg.errors.UndefinedTable:
        return 0
    row = await cur.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


async def projection_health(conn: psycopg.AsyncConnection) -> dict[str, Any]:
    """Events skipped by the projections (`projection_skipped`), and the projections whose
    last recorded error lies beyond their tracked position: failing now, being retried."""
    health: dict[str, Any] = {"skipped_events": 0, "failing": []}
    with contextlib.suppress(psycopg.errors.UndefinedTable):
        cur = await conn.execute("SELECT count(*) FROM projection_skipped")
        row = await cur.fetchone()
        health["skipped_events"] = int(row[0]) if row else 0
    with contextlib.suppress(psycopg.errors.UndefinedTable):
        cur = await conn.execute(
            f"SELECT e.name FROM projection_errors e LEFT JOIN {TRACKING_TABLE} t"
            " ON t.application_name = e.name"
            " WHERE coalesce(t.notification_id, 0) < e.position ORDER BY e.name")
        health["failing"] = [r[0] for r in await cur.fetchall()]
    return health
