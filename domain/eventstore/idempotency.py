"""Idempotency keys as aggregates, saved in the same transaction as the effect they guard.

A key's record keeps the answer the caller was given, so that a retry is told it (the 409's
`original_status` and `Location`). What that answer is belongs to the caller's protocol: the
`Claim` the command API builds carries its table (`answer_for`, effect -> answer), and the
record stores the result without reading it. The domain names effects; only the command API
knows that a created chat is `201` at `/api/v1/chats/N`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import register_topic

from domain import ids
from domain.errors import IdempotencyConflictError
from domain.outcomes import Effect

Answer = tuple[int, str | None]  # as the caller's table gives it: (status, location) over HTTP


def unanswered(effect: Effect) -> Answer:
    """The answer kept for a claim made outside any protocol (tests, tools): none."""
    return 0, None


@dataclass(frozen=True)
class Claim:
    """An Idempotency-Key as presented by one caller for one request."""

    scope: str
    key: str
    fingerprint: str
    answer_for: Callable[[Effect], Answer] = field(default=unanswered, compare=False)


class IdempotencyKey(Aggregate):
    """A caller's use of one key: what request it was and how it was answered.

    The stored events name the answer's parts `status` and `location` (events in the log keep
    those names); this aggregate never interprets them.
    """

    @staticmethod
    def create_id(scope: str, key: str) -> UUID:
        return ids.idempotency_id(scope, key)

    @event("Used")
    def __init__(self, scope: str, key: str, fingerprint: str, status: int,
                 location: str | None) -> None:
        self.scope = scope
        self.key = key
        self._record(fingerprint, status, location)

    def _record(self, fingerprint: str, status: int, location: str | None) -> None:
        self.fingerprint = fingerprint
        self.status = status
        self.location = location

    @property
    def answer(self) -> Answer:
        return self.status, self.location

    @event("Reused")
    def reuse(self, fingerprint: str, status: int, location: str | None) -> None:
        """Take the key again once the previous use expired."""
        self._record(fingerprint, status, location)

    def expired(self, ttl_seconds: float, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return (now - self.modified_on).total_seconds() > ttl_seconds


# Stored events name this class by the module it lived in first: they must still load.
register_topic("domain.idempotency:IdempotencyKey", IdempotencyKey)


class IdempotencyRecords:
    """Checks claims against the keys' records, and makes the record a save appends."""

    def __init__(self, repository: Repository[UUID], ttl: float) -> None:
        self.repository = repository
        self.ttl = ttl

    def record(self, claim: Claim, effect: Effect, reuse: bool) -> IdempotencyKey:
        """The key's record for this use: new, or (`reuse`) the expired one taken over."""
        status, location = claim.answer_for(effect)
        record = self.check(claim) if reuse else None
        if record is None:
            return IdempotencyKey(scope=claim.scope, key=claim.key,
                                  fingerprint=claim.fingerprint, status=status, location=location)
        record.reuse(claim.fingerprint, status, location)
        return record

    def check(self, claim: Claim, *, racing: bool = False) -> IdempotencyKey | None:
        """Raise if the key is taken; return an expired record that may be reused."""
        try:
            record: IdempotencyKey = self.repository.get(
                IdempotencyKey.create_id(claim.scope, claim.key))
        except AggregateNotFoundError:
            return None
        if record.expired(self.ttl) and not racing:
            return record
        if racing:
            raise IdempotencyConflictError(
                "A request with this Idempotency-Key is in progress or has completed")
        if record.fingerprint != claim.fingerprint:
            raise IdempotencyConflictError(
                "This Idempotency-Key was already used for a different request")
        raise IdempotencyConflictError(
            "This Idempotency-Key was already used; the request completed",
            answer=record.answer)
