"""The live projector: read the log after the lowest tracked position, apply, track, notify.

Each batch is one transaction: every projection's rows, every projection's tracking row and
the `readmodels` position commit together, so a crash anywhere replays the batch exactly once.
Each read model's `apply` takes its part of the batch at once: the same code path as replays.

No single event may stop the read models. A batch that fails for any reason but a lost or
refused connection (those are the database's trouble, not the event's) is retried with
backoff by the caller; after `POISON_ATTEMPTS` failures in a row at the same place it runs
once more *isolating* each projection's apply of each event (alone) in a savepoint. What still
fails there is skipped by that projection alone, recorded in `projection_skipped` in the same
transaction, and everything else commits. Skipping, not stopping, because a projection stuck
on one event takes its whole read model down for every user (one crafted request would be a
denial of service), while a skip loses that one event's effect, visibly (status, /readyz, a
metric, the log) and recoverably: once the code is fixed, `parley projections rebuild NAME`
replays the log, skipped events included.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing import persistence as es_persistence
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresTrackingRecorder
from psycopg import Cursor

from domain.app import Parley
from domain.eventstore.schema import schema_lock
from projectors.attachments import AttachmentsProjection
from projectors.base import ReadModel
from projectors.chats import ChatsProjection
from projectors.failures import ERRORS_DDL, SKIPPED_DDL, record_error, record_skipped
from projectors.memberships import MembershipsProjection
from projectors.messages import MessagesProjection
from projectors.payloads import published_types
from projectors.reactions import ReactionsProjection
from projectors.reads import ReadsProjection
from projectors.replay import TopicFilter, wanted_types
from projectors.search import SearchProjection
from projectors.sessions import SessionsProjection
from projectors.tracking import Positions, share_batch_lock
from projectors.users import UsersProjection
from shared.postgres.positions import CHANNEL, READMODELS, TRACKING_TABLE
from shared.settings import Settings

log = logging.getLogger(__name__)
BATCH_SIZE = 1000
POISON_ATTEMPTS = 3  # failed tries of a batch before it is applied isolating each event
UNREADABLE = "log"  # the name skips of events no code could decode are recorded under


def is_unavailable(exc: BaseException) -> bool:
    """A lost, refused or timed-out database connection: not the event's fault, never skip."""
    return isinstance(exc, (psycopg.OperationalError, es_persistence.OperationalError,
                            es_persistence.InterfaceError))


def live_projections() -> list[ReadModel]:
    """Every read model the query API serves; a new one here is backfilled from the log."""
    return [UsersProjection(), ChatsProjection(), MessagesProjection(), AttachmentsProjection(),
            MembershipsProjection(), SessionsProjection(), ReadsProjection(),
            ReactionsProjection(), SearchProjection()]


@dataclass(frozen=True)
class Batch:
    """Events applied in one transaction, with their log positions.

    `events` holds only the events some projection or the publisher keeps (the others, such
    as idempotency records, are not even decoded); `last` is where the batch ends in the log.
    """

    after: int  # the position the batch follows on from
    last: int
    events: Sequence[tuple[int, object]]


class LiveProjector:
    """Applies the event log to the read models in batches, exactly once."""

    def __init__(self, settings: Settings, projections: Sequence[ReadModel] | None = None,
                 app: Parley | None = None) -> None:
        self.app = app or Parley(env=settings.eventsourcing_env())
        recorder = self.app.recorder
        assert isinstance(recorder, PostgresApplicationRecorder)
        self.recorder = recorder
        self.datastore = recorder.datastore
        self.tracking = PostgresTrackingRecorder(self.datastore,
                                                 tracking_table_name=TRACKING_TABLE)
        # Tracking rows must commit in the batch's transaction: eventsourcing's public
        # `insert_tracking` opens a transaction of its own (joining ours takes its private
        # `_insert_tracking`), so Positions writes its single-row table, all rows in one
        # statement, refusing to go back as eventsourcing does.
        assert self.datastore.single_row_tracking
        self.track = Positions(self.datastore.schema)
        self.projections = list(projections or live_projections())
        # the events worth decoding: what a projection applies or the publisher publishes
        self.is_wanted = TopicFilter((*wanted_types(self.projections), *published_types()))
        with schema_lock(self.datastore):
            self.tracking.create_table()
            with self.datastore.transaction(commit=True) as curs:
                for projection in self.projections:
                    for statement in projection.ddl:
                        curs.execute(statement)
                curs.execute(ERRORS_DDL)
                curs.execute(SKIPPED_DDL)
        self.positions = {p.name: self.tracking.max_tracking_id(p.name) or 0
                          for p in self.projections}
        self.readmodels_position = self.tracking.max_tracking_id(READMODELS) or 0
        # A projection behind `readmodels` joined late (added to the code, or reset): it is
        # brought up by a Backfill off this loop, and `join`s the live ones when it is close.
        self.lagging = [p for p in self.projections
                        if self.positions[p.name] < self.readmodels_position]
        self.live = [p for p in self.projections if p not in self.lagging]
        if not self.live:  # every position lost: nothing live to protect, replay all together
            self.live, self.lagging = self.lagging, []
        self._joining = threading.Lock()
        self.failures = 0  # failed tries in a row of the batch after `failed_after`
        self.failed_after = -1
        self.skipped = 0  # events skipped by this process (a metric)

    @property
    def position(self) -> int:
        """Where the next batch starts: the lowest position of the live projections."""
        return min((self.positions[p.name] for p in self.live), default=0)

    def join(self, projection: ReadModel, position: int) -> None:
        """A backfilled projection, now at `position`, is kept by the live batches from here."""
        with self._joining:
            self.positions[projection.name] = position
            self.lagging.remove(projection)
            self.live.append(projection)

    def process_batch(self, limit: int = BATCH_SIZE) -> Batch | None:
        """Apply the next batch of notifications; None when the log has nothing new.

        Raises what made the batch fail (recorded for `status`); the caller retries with
        backoff, and the batch's `POISON_ATTEMPTS`-th try isolates the failing events.
        """
        with self._joining:
            live = list(self.live)
        after = min((self.positions[p.name] for p in live), default=0)
        notifications = self.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False)
        if not notifications:
            return None
        isolate = self.failed_after == after and self.failures >= POISON_ATTEMPTS - 1
        last = notifications[-1].id
        failing = (READMODELS, last)  # what to blame if the transaction fails
        try:
            events, unreadable = self._decode(notifications, isolate)
            with self.datastore.transaction(commit=True) as curs:
                share_batch_lock(curs)  # a rebuild's swap waits for this batch, or it for it
                for position, exc in unreadable:
                    self._skip(curs, UNREADABLE, position, exc)
                moves: dict[str, int] = {}  # tracking rows to write
                for projection in live:
                    done = self.positions[projection.name]
                    if done >= last:
                        continue  # ahead of a projection that just joined: nothing to do
                    kept = projection.event_types
                    mine = [(position, event) for position, event in events
                            if position > done and isinstance(event, kept)]
                    if isolate:
                        for position, event in mine:
                            failing = (projection.name, position)
                            self._apply_isolated(curs, projection, position, event)
                    elif mine:
                        failing = (projection.name, mine[0][0])  # where its part starts
                        projection.apply(mine, curs)
                    moves[projection.name] = last
                failing = (READMODELS, last)
                if last > self.readmodels_position:
                    # After a join, batches start behind `readmodels` for a while: never go back.
                    moves[READMODELS] = last
                    curs.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(last)))
                if moves:
                    self.track.advance(curs, moves)
        except Exception as exc:
            record_error(self.datastore, *failing, exc)
            if not is_unavailable(exc):
                self.failures = self.failures + 1 if self.failed_after == after else 1
                self.failed_after = after
            raise
        self.failures, self.failed_after = 0, -1
        for projection in live:
            self.positions[projection.name] = max(self.positions[projection.name], last)
        self.readmodels_position = max(self.readmodels_position, last)
        return Batch(after, last, events)

    def _decode(self, notifications: Sequence[Any], isolate: bool
                ) -> tuple[list[tuple[int, object]], list[tuple[int, Exception]]]:
        """The wanted events; when isolating, those that cannot be decoded are set apart."""
        mapper, wanted = self.app.mapper, self.is_wanted
        events: list[tuple[int, object]] = []
        unreadable: list[tuple[int, Exception]] = []
        if not isolate:
            events.extend((n.id, mapper.to_domain_event(n)) for n in notifications
                          if wanted(n.topic))
            return events, unreadable
        for n in notifications:
            try:
                if wanted(n.topic):
                    events.append((n.id, mapper.to_domain_event(n)))
            except Exception as exc:
                unreadable.append((n.id, exc))
        return events, unreadable

    def _apply_isolated(self, curs: Cursor[Any], projection: ReadModel, position: int,
                        event: object) -> None:
        try:
            with curs.connection.transaction():  # a savepoint: a failure undoes this alone
                projection.apply([(position, event)], curs)
        except Exception as exc:
            if is_unavailable(exc):
                raise
            self._skip(curs, projection.name, position, exc)

    def _skip(self, curs: Cursor[Any], name: str, position: int, exc: Exception) -> None:
        log.error("%s skips the event at position %s, which it cannot apply: %s: %s",
                  name, position, type(exc).__name__, exc)
        record_skipped(curs, name, position, exc)
        self.skipped += 1

    def close(self) -> None:
        self.app.close()


class LogListener:
    """Wakes the projector when the event store commits (eventsourcing NOTIFYs its table)."""

    def __init__(self, settings: Settings, channel: str) -> None:
        self._conn = psycopg.connect(settings.database_url, autocommit=True)
        self._conn.execute(f"LISTEN {channel}")

    def wait(self, timeout: float) -> None:
        """Return on the next notification or after `timeout` (the poll covers lost ones)."""
        for _ in self._conn.notifies(timeout=timeout, stop_after=1):
            pass

    def close(self) -> None:
        self._conn.close()


