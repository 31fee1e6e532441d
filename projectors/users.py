"""The `users` read model: one row per account, as `GET /users/me` and `/users/{id}` serve it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from psycopg import Cursor

from domain.user import User
from projectors.base import Events
from projectors.rows import Table


@dataclass(slots=True)
class UserRow:
    """A row of `users`."""

    id: int
    email: str
    display_name: str
    avatar_url: str | None
    created_at: datetime
    position: int


USERS = Table("users", UserRow)


class UsersProjection:
    """Keeps `users` (an account is registered once: no updates)."""

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
    event_types: ClassVar[tuple[type, ...]] = (User.Registered,)

    def apply(self, events: Events, curs: Cursor[Any]) -> None:
        """Every event kept is an insert: one binary COPY."""
        USERS.copy(curs, [
            UserRow(id=event.number, email=event.email, display_name=event.display_name,
                    avatar_url=event.avatar_url, created_at=event.timestamp, position=position)
            for position, event in events if isinstance(event, User.Registered)])
