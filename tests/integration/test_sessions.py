"""Ended-session checks read PostgreSQL after every request asked, sharing queries under load."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
from psycopg_pool import AsyncConnectionPool

from projectors.sessions import SessionsProjection
from shared.postgres.sessions import EndedSessions
from shared.settings import Settings


def end_sessions(settings: Settings, sessions: list[uuid.UUID]) -> None:
    with psycopg.connect(settings.database_url) as conn:
        for statement in SessionsProjection.ddl:
            conn.execute(statement)
        for n, session in enumerate(sessions):
            conn.execute("INSERT INTO ended_sessions VALUES (%s, 1, 'logout', now(), %s)",
                         (session, n + 1))


def test_concurrent_checks_share_queries_and_see_every_ending(settings: Settings) -> None:
    ended = [uuid.uuid4() for _ in range(10)]
    live = [uuid.uuid4() for _ in range(40)]

    async def scenario() -> None:
        async with AsyncConnectionPool(settings.database_url, min_size=1, max_size=4,
                                       kwargs={"autocommit": True}) as pool:
            sessions = EndedSessions(pool)
            assert not await sessions.session_ended(str(ended[0]))  # no table yet: none ended
            await asyncio.to_thread(end_sessions, settings, ended)
            before = pool.get_stats()["requests_num"]
            asked = [*ended, *live]
            answers = await asyncio.gather(*(sessions.session_ended(str(s)) for s in asked))
            assert answers == [True] * len(ended) + [False] * len(live)
            assert pool.get_stats()["requests_num"] - before <= 2  # not 50 queries
            # an ending after a "not ended" answer is seen by the next check: nothing stale
            later = live[0]
            await asyncio.to_thread(end_sessions_later, settings, later)
            assert await sessions.session_ended(str(later))
            assert await sessions.session_ended("not-a-uuid")  # no login ever made it

    asyncio.run(scenario())


def end_sessions_later(settings: Settings, session: uuid.UUID) -> None:
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("INSERT INTO ended_sessions VALUES (%s, 1, 'logout', now(), 99)", (session,))
