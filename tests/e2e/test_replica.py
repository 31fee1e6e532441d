"""Reads from a PostgreSQL streaming replica (READ_DATABASE_URL): the query API serves from it,
and read-your-writes holds across primary and replica, also while the replica lags or dies."""

from __future__ import annotations

import contextlib
import signal
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from parley.embedded import wait_for
from parley.stack import Stack, StackOptions, running_stack
from tests.conftest import TEST_LIMITS
from tests.e2e.client import Api, User

CONSISTENCY_TIMEOUT = 10.0
REPLICA_WAIT = 4.0  # above WRITE_BOUND: a write that waited for a dead replica fails the bound
DEADLINE = 60.0
WRITE_BOUND = 3.0  # seconds a write may take while the replica is down (measured: < 0.1 s)


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = Path(tmp_path_factory.mktemp("replicated"))
    options = StackOptions(data_dir=data_dir, port=0, log_dir=data_dir / "logs", workers=2,
                           replica=True,
                           extra_env={"CONSISTENCY_TIMEOUT": str(CONSISTENCY_TIMEOUT),
                                      "REPLICA_WAIT": str(REPLICA_WAIT), **TEST_LIMITS})
    with running_stack(options) as running:
        yield running


@pytest.fixture(scope="module")
def rapi(replicated: Stack) -> Api:
    return Api(replicated.base_url)


@contextlib.contextmanager
def replay_paused(stack: Stack) -> Iterator[None]:
    """The replica stops applying WAL meanwhile: it answers, with data of the moment it
    stopped."""
    url = stack.env["READ_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        wait_for(lambda: _scalar(conn, "SELECT pg_get_wal_replay_pause_state()") == "paused",
                 DEADLINE, "replay paused")
    try:
        yield
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")


def _scalar(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query).fetchone()
    return row[0] if row else None


def texts(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [m["content"] for m in response.json()]


def page(api: Api, user: User, chat: int, position: str | None = None) -> httpx.Response:
    headers = {"X_Min_Position": position} if position is not None else {}
    return api.get("/messages", token=user.token, params={"chat_id": chat}, **headers)


def replica_report(stack: Stack) -> dict[str, Any]:
    response = httpx.get(f"{stack.base_url}/readyz", timeout=10)
    assert response.status_code == 200, response.text  # ready whatever the replica does
    report: dict[str, Any] = response.json()["replica"]
    return report


def test_reads_come_from_the_replica_but_never_older_than_x_min_position(
        rapi: Api, replicated: Stack) -> None:
    ann, bob = User(rapi, "Ann"), User(rapi, "Bob")
    chat = ann.group(bob)["id"]
    ann.say(chat, "before")
    wait_for(lambda: "before" in texts(page(rapi, bob, chat)), DEADLINE, "replica has it")
    with replay_paused(replicated):
        posted = ann.post("/messages", {"chat_id": chat, "type": "text", "content": "during"})
        assert posted.status_code == 201, posted.text
        # not yet on the replica: a read without X-Min-Position proves it reads there
        assert "during" not in texts(page(rapi, bob, chat))
        report = replica_report(replicated)
        assert report["reachable"] and report["lag"] > 0, report
        # the write's own position is honoured: the primary serves it
        position = posted.headers["X-Event-Position"]
        assert "during" in texts(page(rapi, bob, chat, position))
    wait_for(lambda: "during" in texts(page(rapi, bob, chat)), DEADLINE,
             "the replica serving it after replay resumed")
    wait_for(lambda: replica_report(replicated)["lag"] == 0, DEADLINE, "no lag reported")


def test_a_position_the_replica_has_not_replayed_is_not_taken_for_beyond_the_log(
        rapi: Api, replicated: Stack) -> None:
    """The log-head check asks the primary: the replica's log ends before the write, and
    asking it would serve the read at once, without the write."""
    ann = User(rapi, "Ann")
    chat = ann.group(User(rapi, "Bob"))["id"]
    supervisor = replicated.supervisor
    assert supervisor is not None
    with replay_paused(replicated), ThreadPoolExecutor(1) as pool:
        with supervisor.held("projector"):
            projector = replicated.processes["projector"]
            projector.send_signal(signal.SIGKILL)
            wait_for(lambda: projector.poll() is not None, DEADLINE, "projector exit")
            posted = ann.post("/messages", {"chat_id": chat, "type": "text", "content": "late"})
            assert posted.status_code == 201, posted.text
            assert posted.headers["X-Consistency"] == "pending"  # nothing projected it
            read = pool.submit(page, rapi, ann, chat, posted.headers["X-Event-Position"])
            # in the log, so waited for (the projector is held: nothing can answer it yet)
            with pytest.raises(TimeoutError):
                read.result(timeout=2.0)
        # the supervisor restarts the projector now, within the read's bounded wait
        assert "late" in texts(read.result(timeout=DEADLINE))


class Traffic:
    """Writers posting, each then reading its chat with the post's X-Min-Position."""

    def __init__(self, base_url: str, writers: int) -> None:
        self.stop = threading.Event()
        self.statuses: Counter[int | str] = Counter()
        self.missed: list[str] = []
        self.write_seconds: list[float] = []
        self.base_url = base_url
        api = Api(base_url)
        self.users = [User(api, f"Writer{i}") for i in range(writers)]
        self.chats = [user.group(User(api))["id"] for user in self.users]

    def run(self, index: int) -> None:
        api, user, chat, sent = Api(self.base_url), self.users[index], self.chats[index], 0
        while not self.stop.is_set():
            sent += 1
            text = f"{index}-{sent}"
            try:
                started = time.monotonic()
                posted = api.post("/messages", {"chat_id": chat, "type": "text", "content": text},
                                  token=user.token)
                self.write_seconds.append(time.monotonic() - started)
                self.statuses[posted.status_code] += 1
                if posted.status_code != 201:
                    continue
                read = page(api, user, chat, posted.headers["X-Event-Position"])
                self.statuses[read.status_code] += 1
                if read.status_code == 200 and text not in texts(read):
                    self.missed.append(text)
            except httpx.HTTPError as exc:
                self.statuses[type(exc).__name__] += 1


def test_a_killed_replica_loses_no_read_and_slows_no_write(replicated: Stack) -> None:
    supervisor = replicated.supervisor
    assert supervisor is not None
    traffic = Traffic(replicated.base_url, writers=2)
    with ThreadPoolExecutor(2) as pool:
        running = [pool.submit(traffic.run, i) for i in range(2)]
        try:
            wait_for(lambda: sum(traffic.statuses.values()) >= 20, DEADLINE, "traffic")
            old = replicated.processes["postgres-replica"]
            with supervisor.held("postgres-replica"):  # down while 20 writes go through
                old.send_signal(signal.SIGKILL)
                writes_before = len(traffic.write_seconds)
                wait_for(lambda: len(traffic.write_seconds) >= writes_before + 20, DEADLINE,
                         "writes while the replica is down")
                during = traffic.write_seconds[writes_before:]
            restarted = time.monotonic()
            wait_for(lambda: replicated.processes["postgres-replica"].pid != old.pid, DEADLINE,
                     "replica restart")
            wait_for(lambda: replica_report(replicated)["reachable"], DEADLINE, "replica back")
            back = time.monotonic() - restarted
            seen = len(traffic.write_seconds)
            wait_for(lambda: len(traffic.write_seconds) >= seen + 20, DEADLINE, "traffic after")
            wait_for(lambda: replica_report(replicated)["lag"] == 0, DEADLINE, "caught up")
        finally:
            traffic.stop.set()
            for future in running:
                future.result()
    print(f"replica serving {back:.1f}s after its restart began; writes while down: {len(during)}, "
          f"p50 {statistics.median(during or [0]):.3f}s, max {max(during or [0]):.3f}s; "
          f"all writes: p50 {statistics.median(traffic.write_seconds):.3f}s, "
          f"max {max(traffic.write_seconds):.3f}s; answers {dict(traffic.statuses)}")
    assert traffic.missed == []
    assert set(traffic.statuses) == {200, 201}, traffic.statuses
    assert max(traffic.write_seconds) < WRITE_BOUND
