"""The event-store application base: atomic saves with idempotency keys, retried decisions."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import strtobool

from domain.errors import NotFoundError
from domain.eventstore.group_commit import GroupCommit
from domain.eventstore.idempotency import Claim, IdempotencyKey, IdempotencyRecords
from domain.eventstore.numbers import create_sequences, number_allocator
from domain.eventstore.recorder import StaleReadError
from domain.eventstore.schema import schema_lock
from domain.outcomes import Effect

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)
STALE_RETRIES = 5  # a command losing this many races in a row gets the last one's error


class _ExpiredKeyError(Exception):
    """The key's previous use expired: run the command again, taking the key over."""


class EventStoreApp(Application[UUID]):
    """Saves aggregates together with the caller's idempotency key in one transaction."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(env or {})
        create = strtobool(env.get("CREATE_TABLE") or "yes")
        env["CREATE_TABLE"] = "no"  # created below, under the schema lock
        env.setdefault("TRANSCODER_TOPIC", "domain.eventstore.transcoder:FastJSONTranscoder")
        if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
            env.setdefault("APPLICATION_RECORDER_TOPIC",
                           "domain.eventstore.recorder:ParleyRecorder")
        super().__init__(env)
        recorder: Any = self.recorder
        self._postgres = recorder.datastore if isinstance(
            recorder, PostgresApplicationRecorder) else None
        if create and self._postgres is not None:
            with schema_lock(self._postgres):
                recorder.create_table()
                create_sequences(self._postgres)
        self._next_number = number_allocator(self._postgres)
        self._keys = IdempotencyRecords(self.repository, ttl=24 * 3600.0)
        self._local = threading.local()
        self._group = GroupCommit(self.events.put)

    @property
    def idempotency_ttl(self) -> float:
        """Seconds a completed request's key stays taken."""
        return self._keys.ttl

    @idempotency_ttl.setter
    def idempotency_ttl(self, seconds: float) -> None:
        self._keys.ttl = seconds

    def check_claim(self, claim: Claim) -> None:
        """Fail fast (before costly work) when the key is already taken."""
        self._keys.check(claim)

    def _load(self, aggregate_id: UUID, kind: type[A], missing: str) -> A:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFoundError(missing) from None
        if not isinstance(aggregate, kind):  # an id of another kind of record (a client's guess)
            raise NotFoundError(missing)
        return aggregate

    @property
    def datastore_pool(self) -> Any:
        """The event store's connection pool (psycopg_pool), or None without PostgreSQL."""
        return self._postgres.pool if self._postgres is not None else None

    def log_head(self) -> int:
        """The position of the last event in the log (0 when it is empty)."""
        return self.recorder.max_notification_id() or 0

    def _exists(self, aggregate_id: UUID) -> bool:
        return any(True for _ in self.events.get(aggregate_id, limit=1))

    def run_command(self, command: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a command; again if what it decided on changed, or its key's use had expired.

        A key is claimed optimistically (no read first): its record is a new aggregate that
        collides with an existing one. Only when that existing use has expired is the command
        run again, now reusing the record; nothing of the first attempt was saved.
        """
        for _ in range(STALE_RETRIES):
            try:
                return self._run_claiming(command, *args, **kwargs)
            except StaleReadError as exc:
                self._forget(exc.stale)  # what it decided on changed under it: decide again
                continue
        return self._run_claiming(command, *args, **kwargs)

    def _forget(self, stale: Iterable[UUID]) -> None:
        """Drop what is kept in memory of these aggregates (a subclass may keep some)."""

    def _run_claiming(self, command: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return command(*args, **kwargs)
        except _ExpiredKeyError:
            self._local.reuse = True
            try:
                return command(*args, **kwargs)
            finally:
                self._local.reuse = False

    def _save(self, claim: Claim | None, effect: Effect, *aggregates: Aggregate | None,
              read: Sequence[Aggregate] = ()) -> int:
        """Save the aggregates and the key's record in one transaction; return the position.

        The record keeps how the claim's caller answers `effect`. `read`: aggregates the
        decision depended on without changing them; if any changed before the append, nothing
        is saved and StaleReadError makes run_command decide again.
        """
        record = self._claim(claim, effect) if claim else None
        try:
            recordings = self._append(*aggregates, record,
                                      expected=[(a.id, a.version) for a in read])
        except IntegrityError:
            if claim is not None:
                if record is not None and record.version == 1 and \
                        self._keys.check(claim) is not None:
                    raise _ExpiredKeyError from None
                self._keys.check(claim, racing=True)
            raise
        self._forget(a.id for a in aggregates if a is not None)  # changed: read them afresh
        return max(r.notification.id for r in recordings)

    def _claim(self, claim: Claim, effect: Effect) -> IdempotencyKey:
        return self._keys.record(claim, effect, reuse=getattr(self._local, "reuse", False))

    def _append(self, *aggregates: Aggregate | None,
                expected: Sequence[tuple[UUID, int]] = ()) -> list[Any]:
        """Save through the group commit: one transaction, maybe shared with other commands."""
        events = [e for a in aggregates if a is not None for e in a.collect_events()]
        return self._group.append(events, expected)

    def close(self) -> None:
        self._group.close()
        super().close()

    def _save_ignoring_race(self, aggregate: Aggregate) -> int | None:
        try:
            return max(r.notification.id for r in self._append(aggregate))
        except IntegrityError:
            return None  # a concurrent command changed it first; revocations are idempotent
