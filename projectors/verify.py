"""`parley projections verify`: are the live read models exactly what a replay of the log gives?

A fresh shadow (`verify__<name>`) is built close to the live position outside any long
transaction. Then one REPEATABLE READ transaction locks the live tables in ACCESS SHARE mode
*before* its snapshot (so no swap can replace them under it; live batches still run), reads the
live position, catches the shadow up to exactly that position inside the same transaction, and
compares. Rows are compared whole, `position` included: a replay applies every event at its
own log position, so positions are part of what must be equal. The shadow is always dropped.

Both sides run the same `apply` (one code path per read model), so what verify compares is two
histories of it: the live tables were built incrementally by the live projector, in batches cut
wherever the log happened to end (1 to 1,000 events, each read model from its own position,
across restarts, backfills and swaps, with isolated and skipped events), the shadow by one
replay in `--batch-size` batches. A difference means the read model is not the log's function:
`apply` depends on where batches are cut (an in-memory path for rows of the same batch against
a statement for older rows), an event was skipped or applied twice, or someone wrote to a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import Cursor, sql

from domain.app import Parley
from projectors.base import ReadModel
from projectors.rebuild import Progress, Replayer, exclusive
from projectors.replay import REPLAY_BATCH
from projectors.shadow import VERIFY, Shadow, live_schema
from shared.settings import Settings

SAMPLE_ROWS = 5


@dataclass
class TableComparison:
    """One table: row counts, digests, and the first rows found on one side only."""

    table: str
    live_rows: int
    rebuilt_rows: int
    live_digest: str
    rebuilt_digest: str
    only_live: list[str] = field(default_factory=list)
    only_rebuilt: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return self.live_digest == self.rebuilt_digest


@dataclass
class Verdict:
    """A projection compared at one log position."""

    projection: str
    position: int
    tables: list[TableComparison]

    @property
    def equal(self) -> bool:
        return all(t.equal for t in self.tables)


def verify(settings: Settings, projections: Sequence[ReadModel], *, app: Parley | None = None,
           progress: Progress | None = None, batch_size: int = REPLAY_BATCH) -> list[Verdict]:
    own_app = app is None
    app = app or Parley(env=settings.eventsourcing_env())
    replayer = Replayer(app, projections, VERIFY, batch_size)
    try:
        with exclusive(settings, replayer.shadows):
            return _verify(replayer, progress)
    finally:
        if own_app:
            app.close()


def _verify(replayer: Replayer, progress: Progress | None) -> list[Verdict]:
    try:
        replayer.prepare(fresh=True)
        replayer.catch_up(replayer.live_positions(), progress)
        live = _live_tables(replayer)
        with replayer.datastore.get_connection() as conn, conn.transaction(force_rollback=True):
            curs = conn.cursor()
            curs.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            for table in live.values():
                if table is not None:  # LOCK takes no snapshot: it must come first
                    curs.execute(sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(table))
            targets = replayer.live_positions(curs)  # the snapshot starts here
            replayer.catch_up(targets, curs=curs)
            return [Verdict(s.name, targets[s.name],
                            [_compare(curs, s, t, live[s.name, t]) for t in s.tables])
                    for s in replayer.shadows]
    finally:
        replayer.drop()


def _live_tables(replayer: Replayer) -> dict[tuple[str, str], sql.Identifier | None]:
    """Each shadow table's live counterpart (None if the live runner never created it)."""
    found: dict[tuple[str, str], sql.Identifier | None] = {}
    with replayer.datastore.transaction() as curs:
        for shadow in replayer.shadows:
            for table in shadow.tables:
                curs.execute("SELECT to_regclass(quote_ident(%s)) IS NOT NULL AS present",
                             (table,))
                row = curs.fetchone()
                present = bool(row and row["present"])
                found[shadow.name, table] = (
                    sql.Identifier(live_schema(curs, table), table) if present else None)
    return found


def _compare(curs: Cursor[Any], shadow: Shadow, table: str,
             live: sql.Identifier | None) -> TableComparison:
    rebuilt = sql.Identifier(shadow.schema, table)
    order = _order(curs, rebuilt)
    rebuilt_rows, rebuilt_digest = _digest(curs, rebuilt, order)
    if live is None:
        return TableComparison(table, 0, rebuilt_rows, "(no live table)", rebuilt_digest,
                               only_rebuilt=_rows(curs, rebuilt, order))
    live_rows, live_digest = _digest(curs, live, order)
    result = TableComparison(table, live_rows, rebuilt_rows, live_digest, rebuilt_digest)
    if not result.equal:
        result.only_live = _rows(curs, _except(live, rebuilt), order)
        result.only_rebuilt = _rows(curs, _except(rebuilt, live), order)
    return result


def _order(curs: Cursor[Any], table: sql.Identifier) -> sql.Composable:
    """ORDER BY the primary key (the whole row as text if there is none)."""
    curs.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
        " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary"
        " ORDER BY array_position(i.indkey::int2[], a.attnum)", (table.as_string(curs),))
    columns = [row["attname"] for row in curs.fetchall()]
    if not columns:
        return sql.SQL('r::text COLLATE "C"')
    return sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(c)) for c in columns)


def _digest(curs: Cursor[Any], table: sql.Identifier, order: sql.Composable) -> tuple[int, str]:
    """Row count and an md5 over every row's text form (all columns), in key order."""
    curs.execute(sql.SQL(
        "SELECT count(*) AS n, md5(coalesce(string_agg(md5(r::text), '' ORDER BY {}), ''))"
        " AS digest FROM {} r").format(order, table))
    row = curs.fetchone()
    assert row is not None
    return int(row["n"]), str(row["digest"])


def _except(left: sql.Identifier, right: sql.Identifier) -> sql.Composable:
    return sql.SQL("(SELECT * FROM {} EXCEPT ALL SELECT * FROM {})").format(left, right)


def _rows(curs: Cursor[Any], source: sql.Composable, order: sql.Composable) -> list[str]:
    """The first rows of `source` in key order, as text."""
    curs.execute(sql.SQL("SELECT r::text AS row FROM {} r ORDER BY {} LIMIT %s").format(
        source, order), (SAMPLE_ROWS,))
    return [row["row"] for row in curs.fetchall()]
