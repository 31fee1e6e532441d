"""Idempotency keys as aggregates, saved in the same transaction as the effect they guard."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import ids


class IdempotencyKey(Aggregate):
    """A caller's use of one key: what request it was and how it ended."""

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

    @event("Reused")
    def reuse(self, fingerprint: str, status: int, location: str | None) -> None:
        """Take the key again once the previous use expired."""
        self._record(fingerprint, status, location)

    def expired(self, ttl_seconds: float, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return (now - self.modified_on).total_seconds() > ttl_seconds
