"""The position waiter's choice between primary and replica (shared/postgres/positions.py), on
two real databases: one plays the primary (tracking row and NOTIFY, as the projector writes
them), the other the replica (its tracking row only, as a standby replays it)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from shared.postgres.positions import (
    CHANNEL,
    PRIMARY,
    READMODELS,
    REPLICA,
    TRACKING_TABLE,
    PositionWaiter,
)
from shared.settings import Settings
from tests.databases import database_url_for

WAIT = 30.0


@pytest.fixture
def replica_url(settings: Settings) -> Iterator[str]:
    name = f"replica_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield database_url_for(settings.database_url, name)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def track(url: str, position: int, notify: bool = False) -> None:
    """Record the read models' position as the projector does (and a standby replays)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TRACKING_TABLE} (application_name text"
                     " PRIMARY KEY, notification_id bigint)")
        conn.execute(f"INSERT INTO {TRACKING_TABLE} VALUES (%s, %s) ON CONFLICT"
                     " (application_name) DO UPDATE SET notification_id = excluded.notification_id",
                     (READMODELS, position))
        if notify:
            conn.execute(f"NOTIFY {CHANNEL}, '{position}'")


async def until(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


def test_the_replica_serves_what_it_reached_and_the_primary_the_rest(
        settings: Settings, replica_url: str) -> None:
    track(settings.database_url, 5)
    track(replica_url, 5)

    async def scenario() -> None:
        waiter = PositionWaiter(settings.database_url, replica_url, replica_wait=0.5)
        await waiter.start()
        try:
            await until(lambda: waiter.replica_reachable and waiter.position == 5, "started")
            assert await waiter.wait_for(5, WAIT) == REPLICA
            assert await waiter.wait_for(5, WAIT, replica=False) == PRIMARY
            # the replica gets there a moment after the primary: the wait is for the replica
            pending = asyncio.create_task(waiter.wait_for(6, WAIT))
            track(settings.database_url, 6, notify=True)
            await until(lambda: waiter.position == 6, "primary at 6")
            track(replica_url, 6)
            assert await pending == REPLICA
            # the replica stays behind: after replica_wait the primary answers
            track(settings.database_url, 7, notify=True)
            started = time.monotonic()
            assert await waiter.wait_for(7, WAIT) == PRIMARY
            assert time.monotonic() - started >= 0.5
            assert waiter.replica_lag == 1
            # nobody gets there: None once the timeout is over
            assert await waiter.wait_for(8, 0.2) is None
        finally:
            await waiter.stop()

    asyncio.run(scenario())


def test_an_unreachable_replica_is_not_waited_for(settings: Settings) -> None:
    track(settings.database_url, 5)
    nowhere = database_url_for(settings.database_url, f"missing_{uuid.uuid4().hex[:12]}")

    async def scenario() -> None:
        waiter = PositionWaiter(settings.database_url, nowhere, replica_wait=WAIT)
        await waiter.start()
        try:
            await until(lambda: waiter.position == 5, "started")
            started = time.monotonic()
            assert await waiter.wait_for(5, WAIT) == PRIMARY
            assert time.monotonic() - started < WAIT / 2
            assert not waiter.replica_reachable
        finally:
            await waiter.stop()

    asyncio.run(scenario())
