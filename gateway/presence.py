"""Who is online: this process's sockets per user, recorded in PostgreSQL with an expiry.

A user is online while any gateway process holds a socket of theirs. Each process counts its
own sockets per user and keeps one row per such user in `presence_sockets`
(shared/postgres/presence.py), refreshed every `PRESENCE_TTL / 3` seconds; a row that stops
being refreshed (its process was killed) stops counting after `PRESENCE_TTL`, and every
process sweeps such rows. A change of a user's global state is decided in one transaction
under a lock per user: the process whose row is the first live one announces `online`, the
one whose row was the last announces `offline`, whatever the processes do at once.
Announcements go out on NATS core (`parley-live.presence.<user>`, gateway/live.py), never into
the event log; they name the user's chats so each process finds the sockets that share one.

One task applies this process's changes in order, comparing what is recorded with what is
open, so a socket that opens and closes at once costs nothing, and a failed write is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from uuid import UUID, uuid4

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from shared.postgres.presence import create_tables
from shared.schemas import PresenceOut

log = logging.getLogger("parley.gateway")
# pg_advisory_xact_lock(int4, int4): its own key space beside the bigint locks.
USER_LOCK_CLASS = 0x5072  # "Pr"
RETRY_SECONDS = 1.0
STOP_SECONDS = 5.0

Announce = Callable[[PresenceOut, list[int]], Awaitable[None]]


class Presence:
    """This process's share of who is online, and the announcements of changes."""

    def __init__(self, pool: AsyncConnectionPool, ttl: float, announce: Announce) -> None:
        self.pool = pool
        self.ttl = ttl
        self.gateway_id = uuid4()
        self._announce = announce
        self._sockets: dict[int, int] = {}  # open sockets per user
        self._recorded: set[int] = set()  # users with a row of ours (as far as we know)
        self._changed: asyncio.Queue[int] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await create_tables(self.pool)
        self._tasks = [asyncio.create_task(self._apply()), asyncio.create_task(self._beat())]

    async def stop(self) -> None:
        """Withdraw every row of ours (bounded): a process stopping cleanly takes its users
        offline at once rather than after the expiry."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._sockets.clear()
        with contextlib.suppress(TimeoutError, psycopg.Error):
            async with asyncio.timeout(STOP_SECONDS):
                for user in list(self._recorded):
                    await self._reconcile(user)

    def opened(self, user: int) -> None:
        self._sockets[user] = self._sockets.get(user, 0) + 1
        if self._sockets[user] == 1:
            self._changed.put_nowait(user)

    def closed(self, user: int) -> None:
        count = self._sockets.get(user, 0) - 1
        if count > 0:
            self._sockets[user] = count
        else:
            self._sockets.pop(user, None)
            self._changed.put_nowait(user)

    async def _apply(self) -> None:
        while True:
            user = await self._changed.get()
            while True:
                try:
                    await self._reconcile(user)
                    break
                except psycopg.Error as exc:
                    log.warning("presence of user %s not recorded (%s); retrying", user,
                                type(exc).__name__)
                    await asyncio.sleep(RETRY_SECONDS)

    async def _reconcile(self, user: int) -> None:
        """Make our row of `user` say what is open here, announcing a global change."""
        online = user in self._sockets
        if online == (user in self._recorded):
            return
        async with self.pool.connection() as conn:
            async with conn.transaction():
                changed = await (self._arrive if online else self._depart)(conn, user)
            chats = await _chats_of(conn, user) if changed is not None else []
        if online:
            self._recorded.add(user)
        else:
            self._recorded.discard(user)
        if changed is not None:
            await self._announce(changed, chats)

    async def _arrive(self, conn: AsyncConnection, user: int) -> PresenceOut | None:
        """Record our row; `online` if no other live row was there."""
        await _lock(conn, user)
        await _drop_expired(conn, user)
        others = await _live_others(conn, user, self.gateway_id)
        await conn.execute(
            "INSERT INTO presence_sockets (user_id, gateway_id, expires_at)"
            " VALUES (%s, %s, now() + make_interval(secs => %s))"
            " ON CONFLICT (user_id, gateway_id) DO UPDATE"
            " SET refreshed_at = now(), expires_at = excluded.expires_at",
            (user, self.gateway_id, self.ttl))
        return None if others else PresenceOut(user_id=user, online=True)

    async def _depart(self, conn: AsyncConnection, user: int) -> PresenceOut | None:
        """Remove our row; `offline` if it was the last live one."""
        await _lock(conn, user)
        cur = await conn.execute(
            "DELETE FROM presence_sockets WHERE user_id = %s AND gateway_id = %s RETURNING 1",
            (user, self.gateway_id))
        if await cur.fetchone() is None:
            return None  # swept (we stalled past the ttl): the sweep announced it
        # A crashed process's expired rows go too, or a sweep would announce them again.
        await _drop_expired(conn, user)
        if await _live_others(conn, user, self.gateway_id):
            return None
        return PresenceOut(user_id=user, online=False, last_seen_at=await _seen(conn, user))

    async def _beat(self) -> None:
        """Refresh our rows, then sweep expired ones (any process's), every ttl/3."""
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self._refresh()
                await self._sweep()
            except psycopg.Error as exc:
                log.warning("presence heartbeat failed: %s", type(exc).__name__)

    async def _refresh(self) -> None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE presence_sockets SET refreshed_at = now(),"
                " expires_at = now() + make_interval(secs => %s)"
                " WHERE gateway_id = %s RETURNING user_id", (self.ttl, self.gateway_id))
            kept = {row[0] for row in await cur.fetchall()}
        # Rows swept while we could not refresh them (a stall longer than the ttl): recorded
        # again, and announced again, by the next reconcile.
        for user in self._recorded - kept:
            self._recorded.discard(user)
            self._changed.put_nowait(user)

    async def _sweep(self) -> None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT DISTINCT user_id FROM presence_sockets WHERE expires_at <= now()"
                " LIMIT 1000")
            for (user,) in await cur.fetchall():
                async with conn.transaction():
                    gone = await _expire(conn, user)
                chats = await _chats_of(conn, user) if gone is not None else []
                if gone is not None:
                    await self._announce(gone, chats)


async def _lock(conn: AsyncConnection, user: int) -> None:
    """Serialise every change of one user's rows, across processes, until commit."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                       (USER_LOCK_CLASS, str(user)))


async def _live_others(conn: AsyncConnection, user: int, gateway: UUID) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM presence_sockets WHERE user_id = %s AND gateway_id <> %s"
        " AND expires_at > now() LIMIT 1", (user, gateway))
    return await cur.fetchone() is not None


async def _drop_expired(conn: AsyncConnection, user: int) -> datetime | None:
    """Delete the user's expired rows; the last heartbeat among them (None if none)."""
    cur = await conn.execute(
        "WITH gone AS (DELETE FROM presence_sockets WHERE user_id = %s"
        " AND expires_at <= now() RETURNING refreshed_at) SELECT max(refreshed_at) FROM gone",
        (user,))
    row = await cur.fetchone()
    return row[0] if row else None


async def _expire(conn: AsyncConnection, user: int) -> PresenceOut | None:
    """A sweep of one user: `offline` if expired rows were all that kept them online."""
    await _lock(conn, user)
    last = await _drop_expired(conn, user)
    if last is None:
        return None  # another process swept them first
    cur = await conn.execute(
        "SELECT 1 FROM presence_sockets WHERE user_id = %s AND expires_at > now()", (user,))
    if await cur.fetchone() is not None:
        return None
    return PresenceOut(user_id=user, online=False, last_seen_at=await _seen(conn, user, last))


async def _seen(conn: AsyncConnection, user: int, at: datetime | None = None) -> datetime:
    """Record and return when the user was last online: `at`, or now."""
    cur = await conn.execute(
        "INSERT INTO presence_last_seen AS l (user_id, last_seen_at)"
        " VALUES (%s, coalesce(%s, now())) ON CONFLICT (user_id) DO UPDATE"
        " SET last_seen_at = greatest(l.last_seen_at, excluded.last_seen_at)"
        " RETURNING last_seen_at", (user, at))
    row = await cur.fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


async def _chats_of(conn: AsyncConnection, user: int) -> list[int]:
    try:
        cur = await conn.execute("SELECT chat_id FROM chat_members WHERE user_id = %s", (user,))
    except psycopg.errors.UndefinedTable:
        return []  # no projector has run yet: nobody shares a chat
    return [row[0] for row in await cur.fetchall()]
