"""`parley projections rebuild`: replay the log into shadow tables, then swap them in.

The live projector keeps serving and following the log all along. A rebuild (1) builds
`rebuild__<name>` batch by batch, each batch one transaction with its tracking row, (2) chases
the live projection's position, and (3) when it is within one batch, takes the batch lock
exclusively (no live batch can run), catches up the last events and swaps the tables in the
same transaction. The live tracking position is not touched: the shadow is swapped in exactly
at it. Nothing is ever published: a rebuild writes tables and tracking rows only.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresTrackingRecorder
from psycopg import Cursor

from domain.app import Parley
from domain.eventstore.schema import schema_lock
from projectors.base import ReadModel
from projectors.failures import forget_skipped, record_error
from projectors.replay import REPLAY_BATCH, LogReader, LogSlice, RawSlice, wanted_types
from projectors.shadow import REBUILD, Shadow, lock_live_tables
from projectors.tracking import Positions, take_batch_lock
from shared.postgres.positions import TRACKING_TABLE
from shared.settings import Settings

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]  # (log positions done, in total)
BATCH_LOCK_TIMEOUT = "10s"  # a live batch commits well within this
# Readers queue behind a waiting ACCESS EXCLUSIVE request: give up soon, and always before
# PostgreSQL's deadlock_timeout (1 s) would abort a reader, then try again.
TABLE_LOCK_TIMEOUT = "200ms"
SWAP_ATTEMPTS = 100


class RebuildError(Exception):
    """The rebuild could not finish (another one runs, or the swap never got its locks)."""


class Replayer:
    """Shadows of some projections, brought forward from the log in large batches."""

    def __init__(self, app: Parley, projections: Sequence[ReadModel], purpose: str,
                 batch_size: int = REPLAY_BATCH) -> None:
        recorder = app.recorder
        assert isinstance(recorder, PostgresApplicationRecorder)
        self.datastore = recorder.datastore
        with schema_lock(self.datastore):
            PostgresTrackingRecorder(self.datastore,
                                     tracking_table_name=TRACKING_TABLE).create_table()
        self.positions = Positions(self.datastore.schema)
        self.shadows = [Shadow(p, purpose, self.positions) for p in projections]
        self.reader = LogReader(app, wanted_types(projections))
        self.batch_size = batch_size
        self.origin = 0
        self._routes: dict[type, list[str]] = {}

    def prepare(self, *, fresh: bool = False) -> None:
        with self.datastore.transaction(commit=True) as curs:
            for shadow in self.shadows:
                shadow.prepare(curs, fresh=fresh)
        self.origin = min((s.position for s in self.shadows), default=0)  # progress counts from

    def reload(self) -> None:
        """Forget positions of a rolled-back transaction: read what was committed."""
        with self.datastore.transaction() as curs:
            stored = self.positions.read(curs, [s.tracking_name for s in self.shadows])
        for shadow in self.shadows:
            shadow.position = stored.get(shadow.tracking_name, 0)

    def live_positions(self, curs: Cursor[Any] | None = None) -> dict[str, int]:
        if curs is None:
            with self.datastore.transaction() as own:
                return self.live_positions(own)
        stored = self.positions.read(curs, [s.name for s in self.shadows])
        return {s.name: stored.get(s.name, 0) for s in self.shadows}

    def lag(self, targets: dict[str, int]) -> int:
        return max((targets[s.name] - s.position for s in self.shadows), default=0)

    def catch_up(self, targets: dict[str, int], progress: Progress | None = None,
                 curs: Cursor[Any] | None = None) -> None:
        """Bring every shadow to its target: a transaction per batch, or all inside `curs`.

        The next batch is fetched in a thread while this one is decoded and written. Decoding
        stays in this thread on purpose: a thread busy decoding holds the GIL, and every round
        trip of this one would then wait up to a switch interval (5 ms) to get it back.
        """
        with ThreadPoolExecutor(1, thread_name_prefix="log-reader") as pool:
            ahead: tuple[int, Future[RawSlice]] | None = None
            while behind := [s for s in self.shadows if s.position < targets[s.name]]:
                start = min(s.position for s in behind)
                stop = max(targets[s.name] for s in behind)
                if ahead is not None and ahead[0] == start:
                    raw = ahead[1].result()
                else:
                    raw = self.reader.fetch(start, stop, self.batch_size)
                ahead = None
                if raw.covered < stop:
                    ahead = (raw.covered, pool.submit(self.reader.fetch, raw.covered, stop,
                                                      self.batch_size))
                chunk = self.reader.decode(raw)
                self._write(chunk, behind, targets, curs)
                if progress:
                    progress(chunk.covered - self.origin, stop - self.origin)

    def _write(self, chunk: LogSlice, behind: list[Shadow], targets: dict[str, int],
               curs: Cursor[Any] | None) -> None:
        if curs is None:
            with self.datastore.transaction(commit=True) as own:
                # Losing the last batches in a server crash is harmless (rows and position go
                # together); not waiting for each flush to disk is not.
                own.execute("SET LOCAL synchronous_commit TO OFF")
                self._write(chunk, behind, targets, own)
            return
        buckets: dict[str, list[tuple[int, object]]] = {s.name: [] for s in behind}
        routes = self._routes
        for item in chunk.events:
            names = routes.get(type(item[1])) or self._route(type(item[1]))
            for name in names:
                if name in buckets:
                    buckets[name].append(item)
        moved = {}
        for shadow in behind:
            upto = min(chunk.covered, targets[shadow.name])
            if upto > shadow.position:  # a shadow ahead of the others waits for them
                shadow.apply(curs, buckets[shadow.name], upto)
                moved[shadow] = upto
        curs.execute("SET LOCAL search_path TO DEFAULT")
        if moved:
            self.positions.advance(curs, {s.tracking_name: p for s, p in moved.items()})
        for shadow, upto in moved.items():  # after the commit, or in the caller's transaction
            shadow.position = upto

    def _route(self, event_type: type) -> list[str]:
        """The shadows that keep events of this type (decided once per type)."""
        names = self._routes.get(event_type)
        if names is None:
            names = self._routes[event_type] = [
                s.name for s in self.shadows if s.accepts(event_type)]
        return names

    def drop(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            for shadow in self.shadows:
                shadow.drop(curs)


class Rebuild:
    """Rebuild some projections with zero downtime; `run` returns the swap position of each."""

    def __init__(self, settings: Settings, projections: Sequence[ReadModel], *,
                 app: Parley | None = None, progress: Progress | None = None,
                 fresh: bool = False, batch_size: int = REPLAY_BATCH) -> None:
        self.settings = settings
        self.own_app = app is None
        self.app = app or Parley(env=settings.eventsourcing_env())
        self.replayer = Replayer(self.app, projections, REBUILD, batch_size)
        self.progress = progress
        self.fresh = fresh

    def run(self) -> dict[str, int]:
        try:
            with exclusive(self.settings, self.replayer.shadows):
                self.replayer.prepare(fresh=self.fresh)
                failed_swaps = 0
                while failed_swaps < SWAP_ATTEMPTS:
                    self.replayer.catch_up(self.replayer.live_positions(), self.progress)
                    if self.replayer.lag(self.replayer.live_positions()) > \
                            self.replayer.batch_size:
                        continue  # the live projector moved on: chase it outside the lock
                    swapped = self._swap()
                    if swapped is not None:
                        return swapped
                    failed_swaps += 1
                    time.sleep(0.05)  # let the query that held a table finish
                raise RebuildError("gave up swapping: the read tables stayed locked by "
                                   "long-running queries")
        except RebuildError:
            raise
        except Exception as exc:
            for shadow in self.replayer.shadows:
                record_error(self.replayer.datastore, shadow.tracking_name, shadow.position, exc)
            raise
        finally:
            if self.own_app:
                self.app.close()

    def _swap(self) -> dict[str, int] | None:
        """One transaction: lock out live batches, catch up, swap. None if a lock timed out.

        The catch-up runs before the table locks: the live position is already frozen by
        the batch lock, and readers are only held up by the renames themselves.
        """
        shadows = self.replayer.shadows
        try:
            with self.replayer.datastore.transaction(commit=True) as curs:
                curs.execute(f"SET LOCAL lock_timeout = '{BATCH_LOCK_TIMEOUT}'")
                take_batch_lock(curs)
                targets = self.replayer.live_positions(curs)
                ahead = [s.name for s in shadows if s.position > targets[s.name]]
                if ahead:  # the live projector would apply those events a second time
                    raise RebuildError(f"the live position of {', '.join(ahead)} went back;"
                                       " rebuild again with --fresh")
                self.replayer.catch_up(targets, curs=curs)
                curs.execute(f"SET LOCAL lock_timeout = '{TABLE_LOCK_TIMEOUT}'")
                lock_live_tables(curs, shadows)
                for shadow in shadows:
                    shadow.swap_in(curs)
                    # the replay applied every event (it stops at the first it cannot), also
                    # those the live projection skipped: they are no longer missing
                    forget_skipped(curs, shadow.name)
            return targets
        except Exception as exc:
            if not isinstance(exc.__cause__ or exc, psycopg.errors.LockNotAvailable):
                raise
            log.info("swap waited too long for a lock; retrying")
            self.replayer.reload()
            return None


@contextlib.contextmanager
def exclusive(settings: Settings, shadows: Sequence[Shadow]) -> Iterator[None]:
    """One rebuild (or verify) per shadow at a time: session advisory locks, held on a
    connection of their own, so a killed process frees them with its connection."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        for shadow in shadows:
            row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                               (shadow.tracking_name,)).fetchone()
            if not row or not row[0]:
                raise RebuildError(f"another process is building {shadow.tracking_name}")
        yield
