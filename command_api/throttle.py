"""Attempts counted per client address in PostgreSQL: failed logins and registrations.

Counting in PostgreSQL, not in memory, makes a limit hold across every API process. Each
attempt is checked and recorded in one transaction *before* the expensive argon2 work, under a
lock per client address, so N concurrent attempts cannot all read the same count and all pass.

Login failures count per (account, address) pair and per address: counting the pair, not the
account alone, means an attacker cannot lock a user out from elsewhere (ASVS V6.3.1); the
per-address bound slows credential stuffing across accounts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from psycopg_pool import AsyncConnectionPool

from domain.eventstore.schema import SCHEMA_LOCK

# pg_advisory_xact_lock(int4, int4): the two-key form is a key space of its own, apart from the
# bigint keys of the schema, append and batch locks (tests/unit/test_advisory_locks.py).
ADDRESS_LOCK_CLASS = 0x5468  # "Th"


@dataclass(frozen=True)
class Attempt:
    """The answer to one attempt: how long to wait (0: go ahead), and when it was recorded."""

    wait: int
    recorded_at: datetime | None = None


class AttemptLog:
    """Attempts per subject over a sliding window, one row each, in the table `table` (its
    time column is `failed_at`, named for its first use: failed logins)."""

    def __init__(self, pool: AsyncConnectionPool, table: str, window: float) -> None:
        self.pool = pool
        self.table = table  # a constant of ours, never client input
        self.window = window

    async def create_table(self) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            await conn.execute(f"""CREATE TABLE IF NOT EXISTS {self.table} (
                subject text NOT NULL,
                failed_at timestamptz NOT NULL DEFAULT now())""")
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {self.table}_subject"
                               f" ON {self.table} (subject, failed_at)")

    async def take(self, address: str, limits: Mapping[str, int]) -> Attempt:
        """Record one attempt on every subject (each belonging to `address`), unless one of
        them already reached its limit within the window: then record nothing and say how
        long until its oldest attempt leaves the window."""
        subjects = list(limits)
        async with self.pool.connection() as conn, conn.transaction():
            # Attempts from one address queue here, so the count below (a fresh snapshot: READ
            # COMMITTED) already holds every attempt recorded before this one.
            await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                               (ADDRESS_LOCK_CLASS, address))
            cur = await conn.execute(
                f"SELECT subject, count(*), extract(epoch FROM min(failed_at)"
                f" + make_interval(secs => %s) - now()) FROM {self.table}"
                f" WHERE subject = ANY(%s) AND failed_at > now() - make_interval(secs => %s)"
                f" GROUP BY subject", (self.window, subjects, self.window))
            waits = [float(wait) for subject, count, wait in await cur.fetchall()
                     if count >= limits[subject]]
            if waits:
                return Attempt(max(1, math.ceil(max(waits))))
            await conn.execute(f"DELETE FROM {self.table} WHERE subject = ANY(%s)"
                               f" AND failed_at <= now() - make_interval(secs => %s)",
                               (subjects, self.window))
            cur = await conn.execute(f"INSERT INTO {self.table} (subject)"
                                     f" SELECT unnest(%s::text[]) RETURNING failed_at",
                                     (subjects,))
            row = await cur.fetchone()
            assert row is not None
            return Attempt(0, row[0])

    async def forget(self, everything: str, one: tuple[str, datetime]) -> None:
        """Delete every attempt of subject `everything`, and the one attempt `one` recorded."""
        subject, recorded_at = one
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(f"DELETE FROM {self.table} WHERE subject = %s", (everything,))
            await conn.execute(
                f"DELETE FROM {self.table} WHERE ctid = (SELECT ctid FROM {self.table}"
                f" WHERE subject = %s AND failed_at = %s LIMIT 1)", (subject, recorded_at))


class LoginThrottle:
    """Failed logins per (account, address) and per address; a login counts as failed until
    it succeeds, so the count is taken before the password is verified."""

    def __init__(self, pool: AsyncConnectionPool, window: float, per_account: int,
                 per_address: int) -> None:
        self.pool = pool
        self.log = AttemptLog(pool, "login_failures", window)
        self.limits = {"pair": per_account, "addr": per_address}

    @staticmethod
    def _subjects(email: str, address: str) -> dict[str, str]:
        return {"pair": f"pair:{email.strip().lower()}|{address}", "addr": f"addr:{address}"}

    async def create_tables(self) -> None:
        await self.log.create_table()

    async def attempt(self, email: str, address: str) -> Attempt:
        """Count this login as a failure now (or refuse it: `wait` > 0)."""
        subjects = self._subjects(email, address)
        return await self.log.take(address, {subjects[kind]: limit
                                             for kind, limit in self.limits.items()})

    async def succeeded(self, email: str, address: str, attempt: Attempt) -> None:
        """The password was right: the pair's failures are cleared, and this attempt no
        longer counts against the address."""
        assert attempt.recorded_at is not None
        subjects = self._subjects(email, address)
        await self.log.forget(subjects["pair"], (subjects["addr"], attempt.recorded_at))


class RegistrationLimit:
    """Registrations per client address (each costs a 19 MiB argon2id hash)."""

    def __init__(self, pool: AsyncConnectionPool, window: float, per_address: int) -> None:
        self.log = AttemptLog(pool, "registrations_by_address", window)
        self.per_address = per_address

    async def create_tables(self) -> None:
        await self.log.create_table()

    async def attempt(self, address: str) -> Attempt:
        return await self.log.take(address, {f"addr:{address}": self.per_address})
