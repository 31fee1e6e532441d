"""Account commands: registration, sessions (refresh-token families), password upgrades."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain import ids
from domain.errors import (
    ConcurrentRefreshError,
    EmailAlreadyRegisteredError,
    RefreshTokenReusedError,
)
from domain.session import Session
from domain.store import Claim, EventStoreApp, Outcome
from domain.user import EmailIndex, User


class AccountCommands(EventStoreApp):
    """Register, log in, rotate and revoke sessions."""

    def register_user(self, claim: Claim, email: str, password_hash: str, display_name: str,
                      avatar_url: str | None, token_id: str) -> Outcome[tuple[User, Session]]:
        """Create the account, its email claim and its first login session atomically."""
        normalized = ids.normalize_email(email)
        if self._exists(EmailIndex.create_id(normalized)):
            self._check_claim(claim)
            raise EmailAlreadyRegisteredError("Email already registered")
        number = self._next_number("user")
        user = User(number=number, email=email.strip(), password_hash=password_hash,
                    display_name=display_name, avatar_url=avatar_url)
        index = EmailIndex(normalized_email=normalized, user_number=number)
        session = Session(user_number=number, token_id=token_id)
        try:
            position = self._save(claim, 201, f"/api/v1/users/{number}", user, index, session)
        except IntegrityError:
            # The claim was checked first, so a racing duplicate key wins over the email rule.
            raise EmailAlreadyRegisteredError("Email already registered") from None
        return Outcome((user, session), position)

    def find_user_by_email(self, email: str) -> User | None:
        try:
            index: EmailIndex = self.repository.get(
                EmailIndex.create_id(ids.normalize_email(email)))
            return self.repository.get(User.create_id(index.user_number))
        except AggregateNotFoundError:
            return None

    def get_user(self, number: int) -> User | None:
        try:
            return self.repository.get(User.create_id(number))
        except AggregateNotFoundError:
            return None

    def users_exist(self, numbers: list[int]) -> bool:
        return all(self._exists(User.create_id(n)) for n in numbers)

    def rehash_password(self, user: User, password_hash: str) -> None:
        user.rehash_password(password_hash)
        self._save_ignoring_race(user)

    def start_session(self, claim: Claim, user_number: int, token_id: str) -> Outcome[Session]:
        session = Session(user_number=user_number, token_id=token_id)
        return Outcome(session, self._save(claim, 200, None, session))

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
        try:
            position = self._save(None, 200, None, session)
        except IntegrityError:
            raise ConcurrentRefreshError("refresh token already used") from None
        return Outcome(session, position)

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
