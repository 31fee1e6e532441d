"""Processes starting together (API workers, projector, a rebuild) all create the schema at once.

PostgreSQL does not serialize concurrent `CREATE ... IF NOT EXISTS` or `CREATE OR REPLACE`: the
losers fail with "tuple concurrently updated" or a duplicate key in pg_type. Every start-up DDL
runs under one advisory lock, so any number of processes may start on a fresh database together.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize

import psycopg

from domain.app import Parley
from projectors.runner import LiveProjector
from shared.settings import Settings

STARTERS = 8


def start(settings: Settings, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()
    LiveProjector(settings).app.close()  # the event store's DDL, then the read models'


def test_many_processes_create_the_schema_together_on_a_fresh_database(
        settings: Settings) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(STARTERS)
    starters = [context.Process(target=start, args=(settings, barrier))
                for _ in range(STARTERS)]
    for process in starters:
        process.start()
    for process in starters:
        process.join(timeout=120)
    assert [p.exitcode for p in starters] == [0] * STARTERS
    app = Parley(env=settings.eventsourcing_env())  # and the schema is whole
    with psycopg.connect(settings.database_url) as conn:
        tables = {name for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"parley_events", "projection_tracking", "users", "messages"} <= tables
    app.close()
