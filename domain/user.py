"""Accounts: the User aggregate and the email index that makes emails unique in the event store."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import ids


class User(Aggregate):
    """A registered account with an integer public id."""

    class Registered(Aggregate.Created):
        """Declared explicitly so projections can type-check against its fields."""

        number: int
        email: str
        password_hash: str
        display_name: str
        avatar_url: str | None

    @staticmethod
    def create_id(number: int) -> UUID:
        return ids.user_id(number)

    @event(Registered)
    def __init__(self, number: int, email: str, password_hash: str, display_name: str,
                 avatar_url: str | None) -> None:
        self.number = number
        self.email = email
        self.password_hash = password_hash
        self.display_name = display_name
        self.avatar_url = avatar_url

    @property
    def registered_at(self) -> datetime:
        return self.created_on

    @event("PasswordRehashed")
    def rehash_password(self, password_hash: str) -> None:
        self.password_hash = password_hash


class EmailIndex(Aggregate):
    """One per normalized email; a second registration collides on its uuid5 id."""

    @staticmethod
    def create_id(normalized_email: str) -> UUID:
        return ids.email_index_id(normalized_email)

    @event("Claimed")
    def __init__(self, normalized_email: str, user_number: int) -> None:
        self.normalized_email = normalized_email
        self.user_number = user_number
