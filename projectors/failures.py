"""Projection failures: the last error of each projection (`projection_errors`) and the events
a projection skipped because it could not apply them (`projection_skipped`).

When a batch fails, its transaction rolls back; the projector then records the exception in a
transaction of its own and re-raises. One row per name, overwritten: the last error, the log
position it happened at (where the projection's part of the failing batch starts; the isolating
try finds the event itself), and when. A row is never deleted: `status` shows it as recovered
once the projection has moved past that position.

An event a projection still cannot apply after the batch's retries (a bug, or a stored event
no code can read) is skipped by that projection alone, and recorded in `projection_skipped` in
the same transaction that moves past it (runner.py says why skipping, not stopping).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor

log = logging.getLogger(__name__)
ERRORS_DDL = """CREATE TABLE IF NOT EXISTS projection_errors (
    name text PRIMARY KEY,
    position bigint NOT NULL,
    error text NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now()
)"""
SKIPPED_DDL = """CREATE TABLE IF NOT EXISTS projection_skipped (
    name text NOT NULL,
    position bigint NOT NULL,
    error text NOT NULL,
    skipped_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, position)
)"""
MAX_LENGTH = 2000


@dataclass(frozen=True)
class Failure:
    """An exception a projection (or a rebuild of one) raised, or an event it skipped."""

    name: str
    position: int
    error: str
    occurred_at: datetime


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_LENGTH].replace("\0", "\ufffd")


def record_skipped(curs: Cursor[Any], name: str, position: int, exc: BaseException) -> None:
    """In the batch's transaction: `name` moves past `position` without applying it."""
    curs.execute("INSERT INTO projection_skipped (name, position, error) VALUES (%s, %s, %s)"
                 " ON CONFLICT (name, position) DO UPDATE SET error = EXCLUDED.error,"
                 " skipped_at = now()", (name, position, describe(exc)))


def forget_skipped(curs: Cursor[Any], name: str) -> None:
    """A rebuild of `name` replayed every event: none is skipped any more."""
    curs.execute("SELECT to_regclass('projection_skipped') IS NOT NULL AS present")
    row = curs.fetchone()
    if row and (row["present"] if isinstance(row, dict) else row[0]):
        curs.execute("DELETE FROM projection_skipped WHERE name = %s", (name,))


def read_skipped(curs: Cursor[Any]) -> list[Failure]:
    """Every skipped event, oldest first (none if no projector created the table yet)."""
    curs.execute("SELECT to_regclass('projection_skipped') IS NOT NULL AS present")
    row = curs.fetchone()
    if not row or not (row["present"] if isinstance(row, dict) else row[0]):
        return []
    curs.execute("SELECT name, position, error, skipped_at FROM projection_skipped"
                 " ORDER BY position, name")
    rows = [tuple(r.values()) if isinstance(r, dict) else r for r in curs.fetchall()]
    return [Failure(r[0], int(r[1]), r[2], r[3]) for r in rows]


def record_error(datastore: PostgresDatastore, name: str, position: int,
                 exc: BaseException) -> None:
    """Best effort: failing to record must never hide the original exception."""
    text = describe(exc)
    try:
        with datastore.transaction(commit=True) as curs:
            curs.execute(ERRORS_DDL)
            curs.execute(
                "INSERT INTO projection_errors (name, position, error) VALUES (%s, %s, %s)"
                " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position,"
                " error = EXCLUDED.error, occurred_at = now()", (name, position, text))
    except Exception:
        log.exception("could not record the error of %s", name)


def read_errors(curs: Cursor[Any]) -> dict[str, Failure]:
    curs.execute("SELECT to_regclass('projection_errors') IS NOT NULL AS present")
    row = curs.fetchone()
    if not row or not (row["present"] if isinstance(row, dict) else row[0]):
        return {}
    curs.execute("SELECT name, position, error, occurred_at FROM projection_errors")
    rows = [tuple(r.values()) if isinstance(r, dict) else r for r in curs.fetchall()]
    return {r[0]: Failure(r[0], int(r[1]), r[2], r[3]) for r in rows}
