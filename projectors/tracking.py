"""Tracking positions, and the lock that orders swaps.

`projection_tracking` is eventsourcing's single-row tracking table (it creates it, and the
publisher writes its `nats` row through it). Every batch of the live projector, a backfill or a
rebuild writes its rows here with `Positions.advance`, in the batch's own transaction; shadows
(`<name>__rebuild`, `<name>__verify`) keep their own rows, so a killed rebuild resumes from its
last committed batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eventsourcing.persistence import IntegrityError
from psycopg import Cursor, sql

from shared.postgres.positions import TRACKING_TABLE

# Every live batch transaction holds this advisory lock shared; a swap holds it exclusively, so
# it sees a settled tracking position and no batch is half-way through the tables it replaces.
BATCH_LOCK = 0x7061726C6579  # "parley"


def share_batch_lock(curs: Cursor[Any]) -> None:
    curs.execute("SELECT pg_advisory_xact_lock_shared(%s)", (BATCH_LOCK,))


def take_batch_lock(curs: Cursor[Any]) -> None:
    curs.execute("SELECT pg_advisory_xact_lock(%s)", (BATCH_LOCK,))


class Positions:
    """Reads and writes rows of the tracking table (in the event store's schema)."""

    def __init__(self, schema: str = "public") -> None:
        self.table = sql.Identifier(schema, TRACKING_TABLE)

    def read(self, curs: Cursor[Any], names: Iterable[str] | None = None) -> dict[str, int]:
        query = sql.SQL("SELECT application_name, notification_id FROM {}").format(self.table)
        if names is None:
            curs.execute(query)
        else:
            curs.execute(query + sql.SQL(" WHERE application_name = ANY(%s)"), (list(names),))
        return {_field(row, 0): int(_field(row, 1) or 0) for row in curs.fetchall()}

    def advance(self, curs: Cursor[Any], moves: dict[str, int]) -> None:
        """Move each name forward to its position, in one statement; refusing to go back
        catches a double apply (as eventsourcing's own tracking does)."""
        curs.execute(sql.SQL(
            "INSERT INTO {0} AS t SELECT * FROM unnest(%s::text[], %s::bigint[])"
            " ON CONFLICT (application_name) DO UPDATE"
            " SET notification_id = EXCLUDED.notification_id"
            " WHERE t.notification_id < EXCLUDED.notification_id"
            " RETURNING application_name").format(self.table),
            (list(moves), list(moves.values())))
        moved = {_field(row, 0) for row in curs.fetchall()}
        if moved != set(moves):
            stale = ", ".join(f"{n} at {p}" for n, p in moves.items() if n not in moved)
            raise IntegrityError(f"tracking already at or past: {stale}")

    def forget(self, curs: Cursor[Any], name: str) -> None:
        curs.execute(sql.SQL("DELETE FROM {} WHERE application_name = %s").format(self.table),
                     (name,))


def _field(row: Any, index: int) -> Any:
    """Rows come as dicts from eventsourcing's pool and as tuples from plain connections."""
    return list(row.values())[index] if isinstance(row, dict) else row[index]
