"""Account commands: registration, log in, sessions (refresh-token families), password upgrades."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain import ids
from domain.errors import (
    ConcurrentRefreshError,
    EmailAlreadyRegisteredError,
    InvalidCredentialsError,
    RefreshTokenReusedError,
)
from domain.eventstore.application import EventStoreApp
from domain.eventstore.idempotency import Claim
from domain.outcomes import Change, Effect, Outcome, Resource
from domain.session import Session
from domain.user import EmailIndex, User


class Passwords(Protocol):
    """The password hasher (argon2id in `command_api/passwords.py`)."""

    def hash_password(self, password: str) -> str: ...

    def verify_password(self, password_hash: str | None, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class AccountCommands(EventStoreApp):
    """Register, log in, rotate and revoke sessions."""

    def register_user(self, claim: Claim, email: str, password_hash: str, display_name: str,
                      avatar_url: str | None, token_id: str) -> Outcome[tuple[User, Session]]:
        """Create the account, its email claim and its first login session atomically."""
        normalized = ids.normalize_email(email)
        if self._exists(EmailIndex.create_id(normalized)):
            self._keys.check(claim)
            raise EmailAlreadyRegisteredError("Email already registered")
        number = self._next_number("user")
        user = User(number=number, email=email.strip(), password_hash=password_hash,
                    display_name=display_name, avatar_url=avatar_url)
        index = EmailIndex(normalized_email=normalized, user_number=number)
        session = Session(user_number=number, token_id=token_id)
        effect = Effect(Change.CREATED, Resource.USER, number)
        try:
            position = self._save(claim, effect, user, index, session)
        except IntegrityError:
            # The claim was checked first, so a racing duplicate key wins over the email rule.
            raise EmailAlreadyRegisteredError("Email already registered") from None
        return Outcome((user, session), position, effect)

    def find_user_by_email(self, email: str) -> User | None:
        try:
            index: EmailIndex = self.repository.get(
                EmailIndex.create_id(ids.normalize_email(email)))
            return self.repository.get(User.create_id(index.user_number))
        except AggregateNotFoundError:
            return None

    def authenticate(self, email: str, password: str, passwords: Passwords) -> User:
        """The account these credentials open, its hash upgraded if the hasher's cost rose.

        An unknown email and a wrong password are one error, and cost the same work: the
        hasher verifies against a dummy hash when there is no account (no enumeration).
        """
        user = self.find_user_by_email(email)
        ok = passwords.verify_password(user.password_hash if user else None, password)
        if user is None or not ok:
            raise InvalidCredentialsError("Invalid email or password")
        if passwords.needs_rehash(user.password_hash):
            user.rehash_password(passwords.hash_password(password))
            self._save_ignoring_race(user)
        return user

    def start_session(self, claim: Claim, user_number: int, token_id: str) -> Outcome[Session]:
        session = Session(user_number=user_number, token_id=token_id)
        effect = Effect(Change.CREATED, Resource.SESSION, session.id)
        return Outcome(session, self._save(claim, effect, session), effect)

    def rotate_session(self, session_id: UUID, presented_token_id: str,
                       new_token_id: str) -> Outcome[Session]:
        """Rotate; a replayed (already rotated) token revokes the whole family."""
        session: Session = self.repository.get(session_id)
        try:
            session.rotate(presented_token_id, new_token_id)
        except RefreshTokenReusedError:
            session.revoke("refresh token reuse")
            self._save_ignoring_race(session)
            raise
        effect = Effect(Change.CHANGED, Resource.SESSION, session.id)
        try:
            position = self._save(None, effect, session)
        except IntegrityError:
            raise ConcurrentRefreshError("refresh token already used") from None
        return Outcome(session, position, effect)

    def get_session(self, session_id: UUID) -> Session | None:
        try:
            return self.repository.get(session_id)
        except AggregateNotFoundError:
            return None

    def revoke_session(self, session_id: UUID, reason: str) -> int | None:
        """Revoke the family; the position of the revocation, None if it already was."""
        session = self.get_session(session_id)
        if session is None or session.revoked:
            return None
        session.revoke(reason)
        return self._save_ignoring_race(session)
