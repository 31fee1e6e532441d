"""The live projector on real PostgreSQL: exactly once across crashes, replay equals live, and
every cut of the log into batches gives the same tables."""

from __future__ import annotations

import sys
from typing import Any

import psycopg
import pytest
from psycopg import Cursor

from domain.app import Claim, Parley
from projectors.base import Events
from projectors.rows import Table
from projectors.runner import LiveProjector, live_projections
from projectors.users import UsersProjection
from projectors.verify import verify
from shared.settings import Settings
from tests.integration.projection import drain
from tests.integration.workload import Workload


class CrashingUsers(UsersProjection):
    """Fails in the batch that reaches its Nth event, after that batch's rows were written."""

    def __init__(self, crash_at: int) -> None:
        self.applied = 0
        self.crash_at = crash_at

    def apply(self, events: Events, curs: Cursor[Any]) -> None:
        super().apply(events, curs)
        self.applied += len(events)
        if self.applied >= self.crash_at:
            raise RuntimeError("projector crashed mid-batch")


def register(app: Parley, n: int) -> None:
    for i in range(n):
        app.register_user(Claim("anonymous", f"key-{i}", "fp"), f"user{i}@example.com", "hash",
                          f"User {i}", None, f"t{i}")


def rows(settings: Settings) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.database_url) as conn:
        return conn.execute("SELECT id, email, display_name, avatar_url, created_at, position"
                            " FROM users ORDER BY id").fetchall()



def test_crash_mid_batch_leaves_nothing_and_the_rerun_applies_once(app: Parley,
                                                                   settings: Settings) -> None:
    register(app, 20)
    crashing = LiveProjector(settings, [CrashingUsers(crash_at=3)], app=app)
    with pytest.raises(RuntimeError):
        while crashing.process_batch(limit=100) is not None:
            pass
    assert rows(settings) == []
    assert crashing.tracking.max_tracking_id("users") in (None, 0)

    runner = LiveProjector(settings, [UsersProjection()], app=app)
    assert drain(runner, limit=7) > 1
    assert [r[0] for r in rows(settings)] == list(range(1, 21))
    assert runner.process_batch() is None
    fresh = LiveProjector(settings, [UsersProjection()], app=app)
    assert fresh.position == runner.position
    assert fresh.process_batch() is None


def test_replay_from_zero_equals_the_live_projection(app: Parley, settings: Settings) -> None:
    register(app, 5)
    live = LiveProjector(settings, [UsersProjection()], app=app)
    drain(live, limit=7)
    app.register_user(Claim("anonymous", "late", "fp"), "late@example.com", "h", "Late", None,
                      "t")
    drain(live, limit=7)
    before = rows(settings)
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("TRUNCATE users")
        conn.execute("DELETE FROM projection_tracking WHERE application_name = 'users'")
    replay = LiveProjector(settings, [UsersProjection()], app=app)
    assert replay.position == 0
    drain(replay, limit=7)
    assert rows(settings) == before and len(before) == 6


def test_tracking_refuses_to_apply_a_position_twice(app: Parley, settings: Settings) -> None:
    register(app, 3)
    runner = LiveProjector(settings, [UsersProjection()], app=app)
    drain(runner, limit=7)
    runner.positions["users"] = 0  # a confused runner that believes it is behind
    with pytest.raises(Exception, match=r"tracking|IntegrityError|duplicate"):
        runner.process_batch()
    assert len(rows(settings)) == 3


def test_every_event_alone_gives_the_tables_a_replay_gives(app: Parley,
                                                           settings: Settings) -> None:
    """One code path: applied one event per batch (as the isolating try applies them), the
    read models equal one replay of the whole log, which takes the in-memory paths."""
    workload = Workload(app, seed=21)
    workload.setup()
    workload.run(60)
    workload.delete_a_chat()
    workload.run(10)
    runner = LiveProjector(settings, app=app)
    batches = 0
    while runner.process_batch(limit=1) is not None:
        batches += 1
    assert batches == workload.last_position
    verdicts = verify(settings, live_projections(), app=app)
    assert [v.projection for v in verdicts if not v.equal] == []
    assert {v.position for v in verdicts} == {workload.last_position}


def test_every_table_written_from_rows_has_the_columns_and_types_of_its_ddl(
        settings: Settings) -> None:
    """A column in the DDL but not in the row dataclass would silently stay NULL."""
    LiveProjector(settings).close()  # creates the read models' tables
    tables = [value for model in live_projections()
              for value in vars(sys.modules[type(model).__module__]).values()
              if isinstance(value, Table)]
    assert {t.name for t in tables} >= {"users", "messages", "chats", "chat_members"}
    with psycopg.connect(settings.database_url) as conn:
        for table in tables:
            columns = conn.execute(
                "SELECT column_name, udt_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = %s"
                " ORDER BY ordinal_position", (table.name,)).fetchall()
            assert columns == list(zip(table.columns, table.types, strict=True)), table.name
