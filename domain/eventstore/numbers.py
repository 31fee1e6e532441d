"""Integer public ids (users, chats, messages): a PostgreSQL sequence per kind, or a counter."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

from eventsourcing.postgres import PostgresDatastore

NUMBERED = ("user", "chat", "message")


def create_sequences(datastore: PostgresDatastore) -> None:
    """One sequence per numbered kind (run under the schema lock)."""
    with datastore.transaction(commit=True) as curs:
        for kind in NUMBERED:
            curs.execute(f"CREATE SEQUENCE IF NOT EXISTS parley_{kind}_numbers")


def number_allocator(datastore: PostgresDatastore | None) -> Callable[[str], int]:
    """`allocate(kind)`: the next number of that kind; in memory without PostgreSQL.

    Numbers are taken outside the append's transaction, so a refused command leaves a gap.
    """
    if datastore is not None:

        def allocate(kind: str) -> int:
            with datastore.get_connection() as conn:
                row = conn.execute(f"SELECT nextval('parley_{kind}_numbers') AS n").fetchone()
                assert row is not None
                return int(row["n"])

        return allocate
    counters = {kind: itertools.count(1) for kind in NUMBERED}
    lock = threading.Lock()

    def allocate_in_memory(kind: str) -> int:
        with lock:
            return next(counters[kind])

    return allocate_in_memory
