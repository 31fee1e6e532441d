"""The Parley application: each public method is a command (load, act, save in one transaction)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresApplicationRecorder

from domain import ids
from domain.errors import (
    ConcurrentRefreshError,
    EmailAlreadyRegisteredError,
    IdempotencyConflictError,
    RefreshTokenReusedError,
)
from domain.idempotency import IdempotencyKey
from domain.session import Session
from domain.user import EmailIndex, User

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True)
class Claim:
    """An Idempotency-Key as presented by one caller for one request."""

    scope: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What a command produced and the log position the read models must reach to show it."""

    value: T
    position: int


class Parley(Application[UUID]):
    """Command handlers over the event store (one events table, `parley_events`)."""

    name = "parley"
    idempotency_ttl: float = 24 * 3600.0

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._next_number = self._number_allocator()

    # -- accounts ---------------------------------------------------------------------------

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

    def rehash_password(self, user: User, password_hash: str) -> None:
        user.rehash_password(password_hash)
        try:
            self.save(user)
        except IntegrityError:
            pass  # another login rehashed concurrently; either hash is fine

    # -- sessions (refresh-token families) ---------------------------------------------------

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

    # -- idempotency and persistence --------------------------------------------------------

    def _save(self, claim: Claim | None, status: int, location: str | None,
              *aggregates: Aggregate) -> int:
        """Save the aggregates and the key's record in one transaction; return the position."""
        record = self._claim(claim, status, location) if claim else None
        try:
            recordings = self.save(*aggregates, record)
        except IntegrityError:
            if claim is not None:
                self._check_claim(claim, racing=True)
            raise
        return max(r.notification.id for r in recordings)

    def _claim(self, claim: Claim, status: int, location: str | None) -> IdempotencyKey:
        record = self._check_claim(claim)
        if record is None:
            return IdempotencyKey(scope=claim.scope, key=claim.key,
                                  fingerprint=claim.fingerprint, status=status, location=location)
        record.reuse(claim.fingerprint, status, location)
        return record

    def check_claim(self, claim: Claim) -> None:
        """Fail fast (before costly work) when the key is already taken."""
        self._check_claim(claim)

    def _check_claim(self, claim: Claim, *, racing: bool = False) -> IdempotencyKey | None:
        """Raise if the key is taken; return an expired record that may be reused."""
        try:
            record: IdempotencyKey = self.repository.get(
                IdempotencyKey.create_id(claim.scope, claim.key))
        except AggregateNotFoundError:
            return None
        if record.expired(self.idempotency_ttl) and not racing:
            return record
        if racing:
            raise IdempotencyConflictError(
                "A request with this Idempotency-Key is in progress or has completed")
        if record.fingerprint != claim.fingerprint:
            raise IdempotencyConflictError(
                "This Idempotency-Key was already used for a different request")
        raise IdempotencyConflictError(
            "This Idempotency-Key was already used; the request completed",
            original_status=record.status, location=record.location)

    def _save_ignoring_race(self, aggregate: Aggregate) -> int | None:
        try:
            return max(r.notification.id for r in self.save(aggregate))
        except IntegrityError:
            return None  # a concurrent command changed it first; revocations are idempotent

    def _exists(self, aggregate_id: UUID) -> bool:
        return any(True for _ in self.events.get(aggregate_id, limit=1))

    def _number_allocator(self) -> Callable[[str], int]:
        """Integer public ids: a PostgreSQL sequence per kind, or a counter in memory."""
        recorder: Any = self.recorder
        if isinstance(recorder, PostgresApplicationRecorder):
            datastore = recorder.datastore
            kinds = ("user", "chat", "message")
            with datastore.transaction(commit=True) as curs:
                for kind in kinds:
                    curs.execute(f"CREATE SEQUENCE IF NOT EXISTS parley_{kind}_numbers")

            def allocate(kind: str) -> int:
                with datastore.get_connection() as conn:
                    row = conn.execute(f"SELECT nextval('parley_{kind}_numbers') AS n").fetchone()
                    assert row is not None
                    return int(row["n"])

            return allocate
        counters = {kind: itertools.count(1) for kind in ("user", "chat", "message")}
        lock = threading.Lock()

        def allocate_in_memory(kind: str) -> int:
            with lock:
                return next(counters[kind])

        return allocate_in_memory
