"""Bringing a late projection up to the live ones without holding them back.

A projection added to the code (or whose tracking was reset) starts far behind the others.
Replayed by the live loop, it would hold every read model at its position until it caught up:
writes would stop seeing their own effects, clients would stop getting events. Instead, the
live loop goes on with the projections that are current, and a Backfill replays the log for
the late one alone, on the fast path of rebuilds (large binary reads, only the events it
keeps, set-based writes), each batch with its tracking row in one transaction. Close enough
to the live position, it `join`s the live loop, which covers the last stretch. Until then its
tables are incomplete (and `parley projections status` shows it behind).
"""

from __future__ import annotations

import logging
import threading

from projectors.base import ReadModel
from projectors.failures import record_error
from projectors.replay import REPLAY_BATCH, LogReader, wanted_types
from projectors.runner import LiveProjector
from projectors.tracking import share_batch_lock

log = logging.getLogger("parley.projector")
JOIN_WITHIN = REPLAY_BATCH  # events behind the live position at which the live loop takes over


class Backfill:
    """Replays the log into one lagging projection of `runner`, then joins it to the live ones."""

    def __init__(self, runner: LiveProjector, projection: ReadModel) -> None:
        self.runner = runner
        self.projection = projection
        self.position = runner.positions[projection.name]
        self.reader = LogReader(runner.app, wanted_types([projection]))

    def run(self, stop: threading.Event | None = None) -> bool:
        """Replay until joined (True), or until `stop` is set (False: resumable later)."""
        name = self.projection.name
        log.info("backfilling %s from position %s", name, self.position)
        while stop is None or not stop.is_set():
            target = self.runner.position  # what the live projections have reached
            if target - self.position <= JOIN_WITHIN:
                self.runner.join(self.projection, self.position)
                log.info("%s backfilled to %s; live from here", name, self.position)
                return True
            self.step(target)
        return False

    def step(self, target: int) -> None:
        """One batch: the events after our position up to at most `target`, and our tracking."""
        read = self.reader.read(self.position, target)
        try:
            with self.runner.datastore.transaction(commit=True) as curs:
                share_batch_lock(curs)  # like a live batch: a rebuild's swap waits for it
                if read.events:
                    self.projection.apply(read.events, curs)
                self.runner.track.advance(curs, {self.projection.name: read.covered})
        except Exception as exc:
            record_error(self.runner.datastore, self.projection.name, read.covered, exc)
            raise
        self.position = read.covered
