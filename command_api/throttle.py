"""Login throttling: failures per (account, address) pair and per address, kept in PostgreSQL.

Counting the pair, not the account alone, means an attacker cannot lock a user out from
elsewhere (ASVS V6.3.1); the per-address bound slows credential stuffing across accounts.
"""

from __future__ import annotations

import math

from psycopg_pool import AsyncConnectionPool

from domain.store import SCHEMA_LOCK

DDL = (
    """CREATE TABLE IF NOT EXISTS login_failures (
        subject text NOT NULL,
        failed_at timestamptz NOT NULL DEFAULT now()
    )""",
    "CREATE INDEX IF NOT EXISTS login_failures_subject ON login_failures (subject, failed_at)",
)


class LoginThrottle:
    """Answers how long a login attempt must wait (0 = go ahead)."""

    def __init__(self, pool: AsyncConnectionPool, window: float, per_account: int,
                 per_address: int) -> None:
        self.pool = pool
        self.window = window
        self.limits = {"pair": per_account, "addr": per_address}

    @staticmethod
    def _subjects(email: str, address: str) -> dict[str, str]:
        return {"pair": f"pair:{email.strip().lower()}|{address}", "addr": f"addr:{address}"}

    async def create_tables(self) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for statement in DDL:
                await conn.execute(statement)

    async def retry_after(self, email: str, address: str) -> int:
        subjects = self._subjects(email, address)
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT subject, count(*), extract(epoch FROM min(failed_at)"
                " + make_interval(secs => %s) - now())"
                " FROM login_failures WHERE subject = ANY(%s)"
                " AND failed_at > now() - make_interval(secs => %s) GROUP BY subject",
                (self.window, list(subjects.values()), self.window))
            rows = {subject: (count, wait) for subject, count, wait in await cur.fetchall()}
        waits = [rows[s][1] for kind, s in subjects.items()
                 if s in rows and rows[s][0] >= self.limits[kind]]
        return max((max(1, math.ceil(float(w))) for w in waits), default=0)

    async def record_failure(self, email: str, address: str) -> None:
        subjects = list(self._subjects(email, address).values())
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM login_failures WHERE subject = ANY(%s)"
                               " AND failed_at < now() - make_interval(secs => %s)",
                               (subjects, self.window))
            await conn.execute("INSERT INTO login_failures (subject) SELECT unnest(%s::text[])",
                               (subjects,))

    async def record_success(self, email: str, address: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM login_failures WHERE subject = %s",
                               (self._subjects(email, address)["pair"],))
