"""The `ended_sessions` read model: login sessions that were logged out or revoked for reuse.

An access token names its session (`sid`); the APIs and the gateway refuse a token whose
session is listed here, so logging out ends the access token at once, not at its expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from psycopg import Cursor

from domain.session import Session
from projectors.base import Events
from projectors.rows import Table


@dataclass(slots=True)
class EndedSessionRow:
    """A row of `ended_sessions` (`user_id` is NULL for sessions revoked before it was kept)."""

    session_id: UUID
    user_id: int | None
    reason: str
    ended_at: datetime
    position: int


ENDED_SESSIONS = Table("ended_sessions", EndedSessionRow)


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
    event_types: ClassVar[tuple[type, ...]] = (Session.Revoked,)

    def apply(self, events: Events, curs: Cursor[Any]) -> None:
        """Every event kept is an insert: one binary COPY."""
        ENDED_SESSIONS.copy(curs, [
            EndedSessionRow(session_id=event.originator_id, user_id=event.user_number,
                            reason=event.reason, ended_at=event.timestamp, position=position)
            for position, event in events if isinstance(event, Session.Revoked)])
