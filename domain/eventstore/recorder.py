"""The events table's recorder, with appends conditional on aggregates they do not change.

A message is its own aggregate, so posting one never conflicts with a change to its chat: a
member removed while their post is in flight could otherwise have the post land after the
removal. A command therefore names the aggregates its decision read (`expected`: id and the
version it saw). In the append's transaction, after its events are inserted under the lock
that serializes every append (APPEND_LOCK below), a database function compares those versions
with the table's; if any moved (by another writer, or by an earlier command of the same group
commit), it raises, the transaction rolls back, and the caller gets `StaleReadError` to run
the command again on fresh state. The check is pipelined with the insert: no extra round trip
in the lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import DatabaseError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

Expected = Iterable[tuple[UUID, int]]
STALE_SQLSTATE = "PR001"  # our own class "PR": psycopg maps it to DatabaseError, never retried
# Serializes appends, as eventsourcing's `LOCK TABLE ... IN EXCLUSIVE MODE` does, so commit
# order is log order. That table lock also conflicts with the SHARE UPDATE EXCLUSIVE lock of
# (auto)VACUUM and ANALYZE: every autoanalyze of the events table stopped all writes for its
# duration (p99 of POST /messages 99 -> 216-450 ms). A transaction advisory lock serializes
# the same writers (every append goes through this recorder) and conflicts with nothing else.
APPEND_LOCK = 0x7061726C65794150  # "parleyAP"


class StaleReadError(Exception):
    """Aggregates a command decided on changed before its append: run the command again."""

    def __init__(self, stale: set[UUID]) -> None:
        super().__init__(f"{len(stale)} aggregate(s) changed since they were read")
        self.stale = stale


class ParleyRecorder(PostgresApplicationRecorder):
    """`PostgresApplicationRecorder` with an advisory append lock and `expected=` conditions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema = Identifier(self.datastore.schema)
        function = Identifier(f"{self.events_table_name}_expect_versions")
        self.sql_create_statements.append(SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}(ids uuid[], versions bigint[])"
            " RETURNS void LANGUAGE plpgsql AS $$"
            " DECLARE stale text;"
            " BEGIN"
            "   SELECT string_agg(e.id::text, ',') INTO stale"
            "   FROM unnest(ids, versions) AS e(id, version)"
            "   WHERE e.version IS DISTINCT FROM (SELECT max(originator_version)"
            "     FROM {schema}.{table} WHERE originator_id = e.id);"
            "   IF stale IS NOT NULL THEN"
            "     RAISE EXCEPTION USING ERRCODE = {sqlstate},"
            "       MESSAGE = 'aggregates changed since they were read', DETAIL = stale;"
            "   END IF;"
            " END $$"
        ).format(schema=schema, function=function, table=Identifier(self.events_table_name),
                 sqlstate=STALE_SQLSTATE))
        self._expect_versions = SQL("SELECT {schema}.{function}(%s::uuid[], %s::bigint[])"
                                    ).format(schema=schema, function=function)
        self.lock_table_statements = [
            SQL("SET LOCAL lock_timeout = '{0}s'").format(self.datastore.lock_timeout),
            SQL("SELECT pg_advisory_xact_lock({0})").format(APPEND_LOCK),
        ]

    def insert_events(self, stored_events: Sequence[StoredEvent],
                      **kwargs: Any) -> Sequence[int] | None:
        try:
            return super().insert_events(stored_events, **kwargs)
        except DatabaseError as exc:
            cause = exc.__cause__
            if isinstance(cause, psycopg.Error) and cause.sqlstate == STALE_SQLSTATE:
                stale = cause.diag.message_detail or ""
                raise StaleReadError({UUID(i) for i in stale.split(",") if i}) from None
            raise

    # eventsourcing's hook inside the append's transaction, after its lock and insert: the
    # public `insert_events` opens and commits that transaction itself, so no public method
    # runs in it, and the version check must (it is only true under the append lock).
    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                              **kwargs: Any) -> None:
        super()._insert_stored_events(curs, stored_events, **kwargs)
        expected: dict[UUID, int] = {}
        for aggregate_id, version in kwargs.get("expected", ()):
            expected[aggregate_id] = min(version, expected.get(aggregate_id, version))
        if expected:  # on a cursor of its own: `curs` still has the insert's ids to give
            curs.connection.cursor().execute(
                self._expect_versions, (list(expected), list(expected.values())), prepare=True)
