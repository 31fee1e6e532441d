"""The `users` read model: one row per account, as `GET /users/me` and `/users/{id}` serve it."""

from __future__ import annotations

from collections.abc import Sequence
from functools import singledispatchmethod
from typing import Any, ClassVar

from psycopg import Cursor

from domain.user import User
from projectors.replay import copy_rows

COLUMNS = (("id", "int8"), ("email", "text"), ("display_name", "text"), ("avatar_url", "text"),
           ("created_at", "timestamptz"), ("position", "int8"))
INSERT = (f"INSERT INTO users ({', '.join(name for name, _ in COLUMNS)})"
          f" VALUES ({', '.join(['%s'] * len(COLUMNS))})")


def _row(event: User.Registered, position: int) -> tuple[Any, ...]:
    return (event.number, event.email, event.display_name, event.avatar_url, event.timestamp,
            position)


class UsersProjection:
    """Keeps `users` (id, email, display_name, avatar_url, created_at)."""

    name: ClassVar[str] = "users"
    ddl: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS users (
            id bigint PRIMARY KEY,
            email text NOT NULL,
            display_name text NOT NULL,
            avatar_url text,
            created_at timestamptz NOT NULL,
            position bigint NOT NULL
        )""",
    )

    @singledispatchmethod
    def apply(self, event: object, curs: Cursor[Any], position: int) -> None:
        """Events this projection does not keep are skipped."""

    @apply.register
    def _(self, event: User.Registered, curs: Cursor[Any], position: int) -> None:
        curs.execute(INSERT, _row(event, position))

    def apply_batch(self, events: Sequence[tuple[int, object]], curs: Cursor[Any]) -> None:
        """`apply` for a replay: every event kept is an insert, so one binary COPY."""
        copy_rows(curs, "users", COLUMNS, [_row(event, position) for position, event in events
                                           if isinstance(event, User.Registered)])
