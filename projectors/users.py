"""The `users` read model: one row per account, as `GET /users/me` and `/users/{id}` serve it."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any, ClassVar

from psycopg import Cursor

from domain.user import User


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
        curs.execute(
            "INSERT INTO users (id, email, display_name, avatar_url, created_at, position)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (event.number, event.email, event.display_name, event.avatar_url,
             event.timestamp, position))
