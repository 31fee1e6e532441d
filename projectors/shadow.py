"""A projection's shadow tables: the same DDL in a schema of their own, and the swap into live.

`rebuild__users.users` is built from the log while `public.users` keeps serving; the shadow's
position is the tracking row `users__rebuild`, committed with every batch, so a killed rebuild
resumes where it stopped. The schema's comment holds a digest of the DDL it was built with:
a shadow left over from older code is dropped, not resumed.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from psycopg import Cursor, sql

from projectors.base import Events, ReadModel
from projectors.tracking import Positions

REBUILD, VERIFY = "rebuild", "verify"


class Shadow:
    """One projection rebuilt into `<purpose>__<name>`, tracked as `<name>__<purpose>`."""

    def __init__(self, projection: ReadModel, purpose: str, positions: Positions) -> None:
        self.projection = projection
        self.name = projection.name
        self.schema = f"{purpose}__{projection.name}"
        self.tracking_name = f"{projection.name}__{purpose}"
        self.types = projection.event_types
        self.positions = positions
        self.position = 0
        self.tables: list[str] = []
        self._ddl_digest = hashlib.sha256("\n".join(projection.ddl).encode()).hexdigest()[:16]

    def prepare(self, curs: Cursor[Any], *, fresh: bool = False) -> None:
        """Create the schema and tables, or find them as a killed run left them."""
        curs.execute("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace"
                     " WHERE nspname = %s", (self.schema,))
        row = curs.fetchone()
        built_with = _first(row) if row else None
        if fresh or (row is not None and built_with != self._ddl_digest):
            self.drop(curs)
            row = None
        if row is None:
            self.positions.forget(curs, self.tracking_name)
            curs.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
            curs.execute(sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                sql.Identifier(self.schema), sql.Literal(self._ddl_digest)))
        self.use(curs)
        for statement in self.projection.ddl:
            curs.execute(statement)
        curs.execute("SET LOCAL search_path TO DEFAULT")
        curs.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n"
                     " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'p')"
                     " ORDER BY c.relname", (self.schema,))
        self.tables = [_first(r) for r in curs.fetchall()]
        self.position = self.positions.read(curs, [self.tracking_name]).get(self.tracking_name, 0)

    def use(self, curs: Cursor[Any]) -> None:
        """Resolve the projection's unqualified table names to the shadow for this transaction.

        Only the shadow schema is on the path: a statement that names a live table fails
        instead of writing to it.
        """
        curs.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(self.schema)))

    def accepts(self, event_type: type) -> bool:
        return issubclass(event_type, self.types)

    def apply(self, curs: Cursor[Any], events: Events, upto: int) -> None:
        """Apply the events (of accepted types, in log order) in (position, upto].

        The caller tracks `upto` in the same transaction and resets the search_path.
        """
        todo = events[bisect_right(events, self.position, key=_position):
                      bisect_right(events, upto, key=_position)]
        if todo:
            self.use(curs)
            self.projection.apply(todo, curs)

    def swap_in(self, curs: Cursor[Any]) -> None:
        """Replace the live tables with the shadow ones (inside the caller's transaction).

        Dropping the live table first frees its index and constraint names; the shadow's move
        with their table. The live table's privileges (GRANTs an operator made, e.g. SELECT
        for a read-only role) are granted on the shadow first. Call `lock_live_tables` first.
        """
        for table in self.tables:
            schema = live_schema(curs, table)
            copy_grants(curs, sql.Identifier(schema, table), sql.Identifier(self.schema, table))
            curs.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(
                sql.Identifier(schema, table)))
            curs.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                sql.Identifier(self.schema, table), sql.Identifier(schema)))
        self.drop(curs)

    def drop(self, curs: Cursor[Any]) -> None:
        curs.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
            sql.Identifier(self.schema)))
        self.positions.forget(curs, self.tracking_name)
        self.position = 0


def copy_grants(curs: Cursor[Any], source: sql.Identifier, target: sql.Identifier) -> None:
    """GRANT on `target` whatever was granted on `source` (nothing if it does not exist)."""
    curs.execute("SELECT to_regclass(%s)", (source.as_string(curs),))
    row = curs.fetchone()
    if not row or _first(row) is None:
        return
    curs.execute(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END,"
        " a.privilege_type, a.is_grantable"
        " FROM pg_class c, aclexplode(c.relacl) a"
        " WHERE c.oid = to_regclass(%s) AND a.grantee <> c.relowner",
        (source.as_string(curs),))
    rows = [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in curs.fetchall()]
    for grantee, privilege, grantable in rows:
        role = sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.SQL(grantee)  # regrole quotes
        curs.execute(sql.SQL("GRANT {} ON {} TO {}{}").format(
            sql.SQL(privilege), target, role,
            sql.SQL(" WITH GRANT OPTION" if grantable else "")))


def lock_live_tables(curs: Cursor[Any], shadows: Sequence[Shadow]) -> None:
    """ACCESS EXCLUSIVE on every live table the shadows replace, in one statement.

    Taking them all before any DDL means the swap never waits while holding some: with a
    `lock_timeout` below `deadlock_timeout` (1 s), a reader holding one table and waiting for
    another makes the swap give up and retry, never a deadlock error for the reader.
    """
    tables = []
    for shadow in shadows:
        for table in shadow.tables:
            curs.execute("SELECT to_regclass(quote_ident(%s)) IS NOT NULL", (table,))
            row = curs.fetchone()
            if row and _first(row):
                tables.append(sql.Identifier(live_schema(curs, table), table))
    if tables:
        curs.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
            sql.SQL(", ").join(tables)))


def live_schema(curs: Cursor[Any], table: str) -> str:
    """Where the live runner finds `table` (its default search_path), or would create it."""
    curs.execute("SELECT coalesce((SELECT n.nspname FROM pg_class c JOIN pg_namespace n"
                  " ON n.oid = c.relnamespace WHERE c.oid = to_regclass(quote_ident(%s))),"
                  " current_schema())",
                  (table,))
    row = curs.fetchone()
    assert row is not None
    return str(_first(row))


def _position(item: tuple[int, object]) -> int:
    return item[0]


def _first(row: Any) -> Any:
    return next(iter(row.values())) if isinstance(row, dict) else row[0]
