"""Read-your-writes: wait until the read models have reached a log position.

The projector commits its tracking row and `NOTIFY parley_projected, '<position>'` in the same
transaction, so a notification means the rows are visible. One LISTEN connection per process
serves every waiting request; a slow poll covers notifications lost while reconnecting.

With a streaming replica (READ_DATABASE_URL) the reads see the replica, which replays the
tracking row with the rows it covers; LISTEN/NOTIFY does not work on a standby, so its
tracking row is polled: every few ms while it is behind the primary's position, every second
otherwise, which also tells whether the replica is reachable at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

import psycopg

CHANNEL = "parley_projected"
READMODELS = "readmodels"  # tracking name of the position every live projection has reached
TRACKING_TABLE = "projection_tracking"
EVENTS_TABLE = "parley_events"  # eventsourcing names it after the application, `Parley`
POLL_SECONDS = 1.0
REPLICA_POLL_SECONDS = 0.005  # while the replica is behind: what a read may wait for it
REPLICA_TIMEOUT = 2.0  # a replica that does not answer a poll in this long is unreachable

Database = Literal["primary", "replica"]
PRIMARY: Database = "primary"
REPLICA: Database = "replica"

log = logging.getLogger(__name__)


class PositionWaiter:
    """Tracks the projected position (primary, and replica if any) and lets requests wait
    (bounded) for a given one."""

    def __init__(self, database_url: str, replica_url: str = "",
                 replica_wait: float = 0.0) -> None:
        self._url, self._replica_url, self.replica_wait = database_url, replica_url, replica_wait
        self.position = 0  # what the primary's read models reached
        self.moved_at = time.monotonic()  # when `position` last moved (readiness)
        self.replica_position = 0  # what the replica replayed (valid while reachable)
        self.replica_reachable = False
        self._changed = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def has_replica(self) -> bool:
        return bool(self._replica_url)

    @property
    def replica_lag(self) -> int:
        """Log positions the replica's read models are behind the primary's."""
        return max(0, self.position - self.replica_position)

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._follow(), name="position-waiter"))
        if self._replica_url:
            self._tasks.append(asyncio.create_task(self._follow_replica(),
                                                   name="replica-position-waiter"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_for(self, position: int, timeout: float,
                       replica: bool = True) -> Database | None:
        """The database whose read models reached `position` (None after `timeout` seconds):
        the replica if it is reachable and gets there within `replica_wait` (reads go there),
        else the primary within the rest of `timeout`. Without a replica (or `replica=False`):
        the primary."""
        deadline = time.monotonic() + timeout
        if self._replica_url and replica:
            await self._wait(lambda: self.replica_position >= position
                             or not self.replica_reachable, min(timeout, self.replica_wait))
            if self.replica_reachable and self.replica_position >= position:
                return REPLICA
        reached = await self._wait(lambda: self.position >= position,
                                   deadline - time.monotonic())
        return PRIMARY if reached else None

    async def _wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        if predicate():
            return True
        if timeout <= 0:
            return False
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(predicate)
            return True
        except TimeoutError:
            return False

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _advance(self, position: int) -> None:
        if position > self.position:
            self.position = position
            self.moved_at = time.monotonic()
            await self._notify()

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

    async def _replica_at(self, position: int | None) -> None:
        """What the replica replayed, None: unreachable. Set, never only raised: a replica
        restarted after a crash may come back at an earlier point than it had shown."""
        reachable, position = position is not None, position or 0
        if (reachable, position) != (self.replica_reachable, self.replica_position):
            self.replica_reachable, self.replica_position = reachable, position
            await self._notify()

    async def _follow_replica(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self._replica_url, autocommit=True,
                        connect_timeout=int(REPLICA_TIMEOUT)) as conn:
                    while True:
                        async with asyncio.timeout(REPLICA_TIMEOUT):
                            await self._replica_at(await _read_position(conn))
                        if self.replica_position < self.position:
                            await asyncio.sleep(REPLICA_POLL_SECONDS)
                        else:  # until the primary moves on, or the health check is due
                            await self._wait(lambda: self.position > self.replica_position,
                                             POLL_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.replica_reachable:
                    log.warning("replica unreachable (%s); reads go to the primary", exc)
                await self._replica_at(None)
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
