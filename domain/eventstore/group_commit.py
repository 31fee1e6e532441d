"""Group commit: commands waiting at the same moment share one append transaction.

Appends are serialized by the events table's lock (which keeps commit order equal to log
order), and every commit waits for its fsync, so one transaction per command caps writes at
the disk's commit rate. A committer thread takes every command waiting at that moment and
appends their events in one transaction. If that batch breaks a uniqueness rule (an email, a
direct-chat pair, an idempotency key), each command is appended on its own, so only the
offending one fails, exactly as if it had been alone. A command whose read went stale
(`domain.eventstore.recorder`) fails alone the same way, to be run again; the others commit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Recording

from domain.eventstore.recorder import StaleReadError

MAX_BATCH_EVENTS = 1000
Put = Callable[..., list[Recording[Any]]]  # put(events, expected=[(id, version), ...])


@dataclass
class _Pending:
    events: list[Any]
    expected: list[tuple[UUID, int]]
    done: threading.Event = field(default_factory=threading.Event)
    recordings: list[Recording[Any]] | None = None
    error: BaseException | None = None


class GroupCommit:
    """Appends events for many threads, batching those that arrive together."""

    def __init__(self, put: Put) -> None:
        self._put = put
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def append(self, events: list[Any],
               expected: Sequence[tuple[UUID, int]] = ()) -> list[Recording[Any]]:
        """Append the events atomically, if the `expected` aggregate versions still hold.

        Blocks until they are committed or refused (StaleReadError: an expectation failed).
        """
        pending = _Pending(events, list(expected))
        self._queue.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.recordings is not None
        return pending.recordings

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, size, closing = [first], len(first.events), False
            while size < MAX_BATCH_EVENTS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    closing = True
                    break
                batch.append(more)
                size += len(more.events)
            self._commit(batch)
            if closing:
                return

    def _commit(self, batch: list[_Pending]) -> None:
        events = [event for pending in batch for event in pending.events]
        expected = [e for pending in batch for e in pending.expected]
        try:
            recordings = self._put(events, expected=expected) if expected else self._put(events)
        except StaleReadError as exc:
            stale = [p for p in batch if any(i in exc.stale for i, _ in p.expected)]
            rest = [p for p in batch if not any(i in exc.stale for i, _ in p.expected)]
            self._fail(stale or batch, exc)
            if stale and rest:
                self._commit(rest)
            return
        except IntegrityError as exc:
            if len(batch) == 1:
                self._fail(batch, exc)
            else:
                for pending in batch:  # find the offender: everyone else still commits
                    self._commit([pending])
            return
        except BaseException as exc:  # connection lost, lock timeout...: all of them failed
            self._fail(batch, exc)
            return
        start = 0
        for pending in batch:
            pending.recordings = recordings[start:start + len(pending.events)]
            start += len(pending.events)
            pending.done.set()

    @staticmethod
    def _fail(batch: list[_Pending], exc: BaseException) -> None:
        for pending in batch:
            pending.error = exc
            pending.done.set()
