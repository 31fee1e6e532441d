"""The event-store application base: atomic saves with idempotency keys, and integer ids."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

import psycopg
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import strtobool

from domain.errors import IdempotencyConflictError, NotFoundError
from domain.group_commit import GroupCommit
from domain.idempotency import IdempotencyKey
from domain.recorder import StaleReadError

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)
NUMBERED = ("user", "chat", "message")
STALE_RETRIES = 5  # a command losing this many races in a row gets the last one's error
# The advisory lock every process takes around its start-up DDL (any 64-bit constant, shared
# by all of Parley's processes). PostgreSQL does not serialize concurrent `CREATE ... IF NOT
# EXISTS` / `CREATE OR REPLACE`: two workers starting together fail with "tuple concurrently
# updated" or a duplicate pg_type key. Holding this lock makes one go first, the rest no-ops.
# Distinct from projectors.tracking.BATCH_LOCK: sharing a key would make every start-up wait
# for live projector batches, and a rebuild's swap for every start-up.
SCHEMA_LOCK = 0x7061726C65795343  # "parleySC"


@contextmanager
def schema_lock(datastore: PostgresDatastore) -> Iterator[None]:
    """Hold the start-up DDL lock, on a connection of its own, for the duration of the block."""
    pool_kwargs = datastore.pool.kwargs  # a dict: eventsourcing passes one, never a callable
    assert isinstance(pool_kwargs, dict)
    kwargs = {k: v for k, v in pool_kwargs.items() if k != "row_factory"}
    with psycopg.connect(**kwargs, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        yield  # closing the session releases the lock, even if the block raised


class _ExpiredKeyError(Exception):
    """The key's previous use expired: run the command again, taking the key over."""


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


class EventStoreApp(Application[UUID]):
    """Saves aggregates together with the caller's idempotency key in one transaction."""

    idempotency_ttl: float = 24 * 3600.0

    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(env or {})
        create = strtobool(env.get("CREATE_TABLE") or "yes")
        env["CREATE_TABLE"] = "no"  # created below, under the schema lock
        env.setdefault("TRANSCODER_TOPIC", "domain.transcoder:FastJSONTranscoder")
        if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
            env.setdefault("APPLICATION_RECORDER_TOPIC", "domain.recorder:ParleyRecorder")
        super().__init__(env)
        recorder: Any = self.recorder
        self._postgres = recorder.datastore if isinstance(
            recorder, PostgresApplicationRecorder) else None
        if create and self._postgres is not None:
            with schema_lock(self._postgres):
                recorder.create_table()
                with self._postgres.transaction(commit=True) as curs:
                    for kind in NUMBERED:
                        curs.execute(f"CREATE SEQUENCE IF NOT EXISTS parley_{kind}_numbers")
        self._next_number = self._number_allocator()
        self._local = threading.local()
        self._group = GroupCommit(self.events.put)

    def check_claim(self, claim: Claim) -> None:
        """Fail fast (before costly work) when the key is already taken."""
        self._check_claim(claim)

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
        """Run a command; once more, taking over the key, if its earlier use had expired.

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

    def _save(self, claim: Claim | None, status: int, location: str | None,
              *aggregates: Aggregate | None, read: Sequence[Aggregate] = ()) -> int:
        """Save the aggregates and the key's record in one transaction; return the position.

        `read`: aggregates the decision depended on without changing them; if any changed
        before the append, nothing is saved and StaleReadError makes run_command decide again.
        """
        record = self._claim(claim, status, location) if claim else None
        try:
            recordings = self._append(*aggregates, record,
                                      expected=[(a.id, a.version) for a in read])
        except IntegrityError:
            if claim is not None:
                if record is not None and record.version == 1 and \
                        self._check_claim(claim) is not None:
                    raise _ExpiredKeyError from None
                self._check_claim(claim, racing=True)
            raise
        self._forget(a.id for a in aggregates if a is not None)  # changed: read them afresh
        return max(r.notification.id for r in recordings)

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

    def _claim(self, claim: Claim, status: int, location: str | None) -> IdempotencyKey:
        record = self._check_claim(claim) if getattr(self._local, "reuse", False) else None
        if record is None:
            return IdempotencyKey(scope=claim.scope, key=claim.key,
                                  fingerprint=claim.fingerprint, status=status, location=location)
        record.reuse(claim.fingerprint, status, location)
        return record

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

    def _number_allocator(self) -> Callable[[str], int]:
        """Integer public ids: a PostgreSQL sequence per kind, or a counter in memory."""
        datastore = self._postgres
        if datastore is not None:

            def allocate(kind: str) -> int:
                with datastore.get_connection() as conn:
                    row = conn.execute(f"SELECT nextval('parley_{kind}_numbers') AS n").fetchone()
                    assert row is not None
                    return int(row["n"])

            return allocate
        counters = {kind: itertools.count(1) for kind in NUMBERED}
        lock = threading.Lock()

        def allocate_in_memory(kind: str) -> int:
            with lock:
                return next(counters[kind])

        return allocate_in_memory
