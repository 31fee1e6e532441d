"""`parley projections status`: where each projection is in the log, how far behind, last error.

Lag in seconds is the age of the oldest event not yet projected. The events table has no
timestamp column (eventsourcing keeps it inside `state`), so that one notification is decoded
with the application's mapper.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import Cursor, sql

from domain.app import Parley
from projectors.base import ReadModel
from projectors.failures import Failure, read_errors, read_skipped
from projectors.publisher import PUBLISHER
from projectors.tracking import Positions
from shared.postgres.positions import READMODELS

MIGRATION = "__migration__"  # eventsourcing's own row in the tracking table


@dataclass(frozen=True)
class Lag:
    """One tracked position against the log head."""

    name: str
    position: int
    events: int  # events in the log after `position`
    seconds: float | None  # age of the oldest of them (None when there is none)
    error: Failure | None = None

    @property
    def error_is_current(self) -> bool:
        """An error the projection has not moved past (still stuck there)."""
        return self.error is not None and self.position < self.error.position


@dataclass(frozen=True)
class Status:
    """The log head, each live projection, the read-model and NATS positions, and shadows."""

    head: int
    projections: list[Lag]
    others: list[Lag]  # `readmodels`, `nats`
    shadows: list[Lag]  # rebuilds or verifies in progress (or killed)
    skipped: list[Failure]  # events a projection moved past without applying them


def status(app: Parley, projections: Sequence[ReadModel]) -> Status:
    recorder = app.recorder
    assert isinstance(recorder, PostgresApplicationRecorder)
    datastore = recorder.datastore
    events = sql.Identifier(datastore.schema, recorder.events_table_name)
    head = recorder.max_notification_id() or 0
    with datastore.transaction() as curs:
        stored = _tracked(curs, Positions(datastore.schema))
        errors = read_errors(curs)
        skipped = read_skipped(curs)

        def lag(name: str) -> Lag:
            position = stored.get(name, 0)
            count, seconds = _behind(curs, app, events, position, head)
            return Lag(name, position, count, seconds, errors.get(name))

        names = [p.name for p in projections]
        shadows = sorted(n for n in stored if "__" in n and n != MIGRATION)
        return Status(head, [lag(n) for n in names], [lag(READMODELS), lag(PUBLISHER)],
                      [lag(n) for n in shadows], skipped)


def _tracked(curs: Cursor[Any], positions: Positions) -> dict[str, int]:
    curs.execute("SELECT to_regclass(%s) IS NOT NULL AS present",
                 (positions.table.as_string(curs),))
    row = curs.fetchone()
    return positions.read(curs) if row and row["present"] else {}


def _behind(curs: Cursor[Any], app: Parley, events: sql.Identifier, position: int,
            head: int) -> tuple[int, float | None]:
    if position >= head:
        return 0, None
    curs.execute(sql.SQL("SELECT count(*) AS n FROM {} WHERE notification_id > %s").format(
        events), (position,))
    row = curs.fetchone()
    count = int(row["n"]) if row else 0
    oldest = app.recorder.select_notifications(start=position, limit=1,
                                               inclusive_of_start=False)
    if not oldest:
        return count, None
    timestamp = getattr(app.mapper.to_domain_event(oldest[0]), "timestamp", None)
    if not isinstance(timestamp, datetime):
        return count, None
    return count, max(0.0, (datetime.now(UTC) - timestamp).total_seconds())
