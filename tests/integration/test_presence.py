"""Presence rows of several gateway processes on one database (gateway/presence.py): a user's
global change is announced exactly once, whatever the processes do at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg_pool import AsyncConnectionPool

from gateway.presence import Presence
from shared.schemas import PresenceOut
from shared.settings import AUTOCOMMIT, Settings

USERS = list(range(1, 21))
WAIT = 30.0


@asynccontextmanager
async def process(settings: Settings, heard: list[PresenceOut],
                  ttl: float = 30.0) -> AsyncIterator[Presence]:
    """One gateway process's presence: a pool of its own, as each process has."""
    async def announce(presence: PresenceOut, chats: list[int]) -> None:
        heard.append(presence)

    async with AsyncConnectionPool(settings.database_url, min_size=1, max_size=2,
                                   kwargs=AUTOCOMMIT) as pool:
        presence = Presence(pool, ttl, announce)
        await presence.start()
        try:
            yield presence
        finally:
            await presence.stop()


async def until(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


def settled(*processes: Presence) -> bool:
    """Every change handed to each process has been recorded."""
    return all(p._changed.empty() and set(p._sockets) == p._recorded for p in processes)


def test_two_processes_closing_a_users_last_sockets_at_once_announce_offline_once(
        settings: Settings) -> None:
    async def scenario() -> None:
        heard: list[PresenceOut] = []
        async with process(settings, heard) as one, process(settings, heard) as two:
            for user in USERS:
                one.opened(user)
            await until(lambda: settled(one), "process one recorded its users")
            for user in USERS:
                two.opened(user)
            await until(lambda: settled(two), "process two recorded its users")
            assert sorted((p.user_id, p.online) for p in heard) == [(u, True) for u in USERS]
            heard.clear()
            for user in USERS:  # both at once: each sees the other's row until it commits
                one.closed(user)
                two.closed(user)
            await until(lambda: settled(one, two), "both processes recorded the closes")
            assert sorted((p.user_id, p.online) for p in heard) == [(u, False) for u in USERS]
            assert all(p.last_seen_at is not None for p in heard)

    asyncio.run(scenario())


def test_a_process_that_stopped_refreshing_is_swept_by_another(settings: Settings) -> None:
    async def scenario() -> None:
        heard: list[PresenceOut] = []
        async with process(settings, heard, ttl=1.0) as alive:
            async with AsyncConnectionPool(settings.database_url, min_size=1, max_size=1,
                                           kwargs=AUTOCOMMIT) as pool:
                dead = Presence(pool, 1.0, alive._announce)
                await dead.start()
                dead.opened(USERS[0])
                await until(lambda: settled(dead), "the doomed process recorded its user")
                for task in dead._tasks:  # killed: no heartbeat, no goodbye
                    task.cancel()
            await until(lambda: any(not p.online for p in heard), "the sweep")
            assert [(p.user_id, p.online) for p in heard] == [(USERS[0], True),
                                                              (USERS[0], False)]

    asyncio.run(scenario())
