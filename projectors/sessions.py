"""The `ended_sessions` read model: login sessions that were logged out or revoked for reuse.

An access token names its session (`sid`); the APIs and the gateway refuse a token whose
session is listed here, so logging out ends the access token at once, not at its expiry.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import singledispatchmethod
from typing import Any, ClassVar

from psycopg import Cursor

from domain.session import Session
from projectors.replay import copy_rows

COLUMNS = (("session_id", "uuid"), ("user_id", "int8"), ("reason", "text"),
           ("ended_at", "timestamptz"), ("position", "int8"))
INSERT = (f"INSERT INTO ended_sessions ({', '.join(name for name, _ in COLUMNS)})"
          f" VALUES ({', '.join(['%s'] * len(COLUMNS))})")


def _row(event: Session.Revoked, position: int) -> tuple[Any, ...]:
    return (event.originator_id, event.user_number, event.reason, event.timestamp, position)


class SessionsProjection:
    """Keeps `ended_sessions` (a session is revoked at most once: no updates)."""

    name: ClassVar[str] = "sessions"
    ddl: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS ended_sessions (
            session_id uuid PRIMARY KEY,
            user_id bigint,
            reason text NOT NULL,
            ended_at timestamptz NOT NULL,
            position bigint NOT NULL
        )""",
    )

    @singledispatchmethod
    def apply(self, event: object, curs: Cursor[Any], position: int) -> None:
        """Events this projection does not keep are skipped."""

    @apply.register
    def _(self, event: Session.Revoked, curs: Cursor[Any], position: int) -> None:
        curs.execute(INSERT, _row(event, position))

    def apply_batch(self, events: Sequence[tuple[int, object]], curs: Cursor[Any]) -> None:
        """`apply` for a replay: every event kept is an insert, so one binary COPY."""
        copy_rows(curs, "ended_sessions", COLUMNS,
                  [_row(event, position) for position, event in events
                   if isinstance(event, Session.Revoked)])
