"""Group commit batches concurrent appends and isolates the one that breaks a rule."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from domain.eventstore.group_commit import GroupCommit
from domain.eventstore.recorder import StaleReadError


class Log:
    """An append-only list standing in for the events table: unique events, one lock."""

    def __init__(self) -> None:
        self.rows: list[Any] = []
        self.transactions = 0
        self.gate = threading.Event()

    def put(self, events: Sequence[Any]) -> list[Any]:
        self.gate.wait(5)  # hold the first transaction so the others queue up behind it
        if len(set(events)) != len(events) or any(e in self.rows for e in events):
            raise IntegrityError("duplicate")
        self.transactions += 1
        start = len(self.rows)
        self.rows.extend(events)
        return [(event, start + i) for i, event in enumerate(events)]


def run_together(append: Callable[[int], None], count: int, gate: threading.Event) -> None:
    """Start `count` appending threads while the first transaction is held, then let go."""
    threads = [threading.Thread(target=append, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join()


def test_waiting_appends_share_transactions_and_get_their_own_recordings() -> None:
    log = Log()
    group = GroupCommit(log.put)  # type: ignore[arg-type]
    results: dict[int, Any] = {}

    def append(n: int) -> None:
        results[n] = group.append([f"e{n}a", f"e{n}b"])

    threads = [threading.Thread(target=append, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    log.gate.set()
    for thread in threads:
        thread.join()
    group.close()
    assert log.transactions < 20
    for n, recordings in results.items():
        assert [event for event, _ in recordings] == [f"e{n}a", f"e{n}b"]
        assert log.rows[recordings[0][1]] == f"e{n}a"


def test_only_the_offending_append_fails() -> None:
    log = Log()
    log.rows.append("taken")
    group = GroupCommit(log.put)  # type: ignore[arg-type]
    errors: dict[int, BaseException] = {}

    def append(n: int) -> None:
        try:
            group.append(["taken" if n == 7 else f"e{n}"])
        except IntegrityError as exc:
            errors[n] = exc

    run_together(append, 12, log.gate)
    group.close()
    assert list(errors) == [7]
    assert sorted(log.rows) == sorted(["taken", *(f"e{n}" for n in range(12) if n != 7)])


def test_other_failures_reach_every_waiting_caller() -> None:
    gate, puts = threading.Event(), []

    def broken(events: Sequence[Any]) -> list[Any]:
        puts.append(list(events))
        gate.wait(5)  # the first transaction is held while the others queue behind it
        raise ConnectionError("database gone")

    group = GroupCommit(broken)
    errors: dict[int, BaseException] = {}

    def append(n: int) -> None:
        try:
            group.append([f"e{n}"])
        except ConnectionError as exc:
            errors[n] = exc

    threads = [threading.Thread(target=append, args=(n,)) for n in range(12)]
    threads[0].start()
    wait_until(lambda: len(puts) == 1)
    for thread in threads[1:]:
        thread.start()
    wait_until(lambda: group._queue.qsize() == 11)  # the other eleven wait, in one batch
    gate.set()
    for thread in threads:
        thread.join(5)
    group.close()
    assert sorted(errors) == list(range(12))  # nobody left waiting, nobody told it worked
    assert [len(events) for events in puts] == [1, 11]


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_a_stale_append_fails_alone_and_the_rest_of_its_batch_commits() -> None:
    log, moved = Log(), uuid4()

    def put(events: Sequence[Any], expected: Sequence[tuple[UUID, int]] = ()) -> list[Any]:
        stale = {i for i, _ in expected if i == moved}
        if stale:
            log.gate.wait(5)
            raise StaleReadError(stale)
        return log.put(events)

    group = GroupCommit(put)
    errors: dict[int, BaseException] = {}

    def append(n: int) -> None:
        try:
            group.append([f"e{n}"], expected=[(moved if n == 3 else uuid4(), 1)])
        except StaleReadError as exc:
            errors[n] = exc

    run_together(append, 12, log.gate)
    group.close()
    assert list(errors) == [3]
    assert sorted(log.rows) == sorted(f"e{n}" for n in range(12) if n != 3)
