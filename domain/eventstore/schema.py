"""The start-up DDL lock: every Parley process creates its tables under it, one at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from eventsourcing.postgres import PostgresDatastore

# The advisory lock every process takes around its start-up DDL (any 64-bit constant, shared
# by all of Parley's processes). PostgreSQL does not serialize concurrent `CREATE ... IF NOT
# EXISTS` / `CREATE OR REPLACE`: two workers starting together fail with "tuple concurrently
# updated" or a duplicate pg_type key. Holding this lock makes one go first, the rest no-ops.
# Distinct from projectors.tracking.BATCH_LOCK: sharing a key would make every start-up wait
# for live projector batches, and a rebuild's swap for every start-up.
SCHEMA_LOCK = 0x7061726C65795343  # "parleySC"


@contextmanager
def schema_lock(datastore: PostgresDatastore) -> Iterator[None]:
    """Hold the start-up DDL lock, on a connection of its own, for the duration of the block."""
    pool_kwargs = datastore.pool.kwargs  # a dict: eventsourcing passes one, never a callable
    assert isinstance(pool_kwargs, dict)
    kwargs = {k: v for k, v in pool_kwargs.items() if k != "row_factory"}
    with psycopg.connect(**kwargs, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        yield  # closing the session releases the lock, even if the block raised
