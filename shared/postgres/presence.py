"""Presence in PostgreSQL: which gateway processes hold sockets of which users, until when.

Not a read model (nothing in the event log says who is online): each gateway process writes
its own rows (`presence_sockets`: one per user with at least one socket open on it) and
refreshes their `expires_at` on a heartbeat, so the rows of a process that died without
closing its sockets (SIGKILL, a lost host) stop counting once they expire. `presence_last_seen`
keeps when each user was last online. The query API only reads both; a user is online while
any of their rows has not expired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg_pool import AsyncConnectionPool

from domain.eventstore.schema import SCHEMA_LOCK

DDL = (
    """CREATE TABLE IF NOT EXISTS presence_sockets (
        user_id bigint NOT NULL,
        gateway_id uuid NOT NULL,
        refreshed_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (user_id, gateway_id))""",
    "CREATE INDEX IF NOT EXISTS presence_sockets_gateway ON presence_sockets (gateway_id)",
    "CREATE INDEX IF NOT EXISTS presence_sockets_expires ON presence_sockets (expires_at)",
    """CREATE TABLE IF NOT EXISTS presence_last_seen (
        user_id bigint PRIMARY KEY,
        last_seen_at timestamptz NOT NULL)""",
)


@dataclass(frozen=True)
class Seen:
    """A user's presence as the APIs show it: `last_seen_at` is None while online."""

    online: bool
    last_seen_at: datetime | None


OFFLINE = Seen(False, None)


async def create_tables(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn, conn.transaction():
        # Processes starting together would otherwise race on the catalog.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        for statement in DDL:
            await conn.execute(statement)


async def presence_of(conn: psycopg.AsyncConnection, users: list[int]) -> dict[int, Seen]:
    """Each user's presence; the last time seen counts an expired (crashed) row's last
    heartbeat until a gateway sweeps it into `presence_last_seen`."""
    try:
        cur = await conn.execute(
            "SELECT u.id, coalesce(bool_or(p.expires_at > now()), false),"
            " greatest(max(l.last_seen_at), max(p.refreshed_at))"
            " FROM unnest(%s::bigint[]) AS u(id)"
            " LEFT JOIN presence_sockets p ON p.user_id = u.id"
            " LEFT JOIN presence_last_seen l ON l.user_id = u.id GROUP BY u.id", (users,))
    except psycopg.errors.UndefinedTable:
        return {}  # no gateway has started yet: nobody is, or was, online
    return {user: Seen(True, None) if online else Seen(False, seen)
            for user, online, seen in await cur.fetchall()}
