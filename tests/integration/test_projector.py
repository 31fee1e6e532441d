"""The batch projector on real PostgreSQL: exactly once across crashes, and replay equals live."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import Cursor

from domain.app import Claim, Parley
from projectors.runner import ProjectionRunner
from projectors.users import UsersProjection
from shared.settings import Settings
from tests.integration.projection import drain


class CrashingUsers(UsersProjection):
    """Fails on the Nth event it applies, after earlier rows of the batch were written."""

    def __init__(self, crash_at: int) -> None:
        self.applied = 0
        self.crash_at = crash_at

    def apply(self, event: object, curs: Cursor[Any], position: int) -> None:
        super().apply(event, curs, position)
        self.applied += 1
        if self.applied == self.crash_at:
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
    crashing = ProjectionRunner(settings, [CrashingUsers(crash_at=3)], app=app)
    with pytest.raises(RuntimeError):
        while crashing.process_batch(limit=100) is not None:
            pass
    assert rows(settings) == []
    assert crashing.tracking.max_tracking_id("users") in (None, 0)

    runner = ProjectionRunner(settings, [UsersProjection()], app=app)
    assert drain(runner, limit=7) > 1
    assert [r[0] for r in rows(settings)] == list(range(1, 21))
    assert runner.process_batch() is None
    fresh = ProjectionRunner(settings, [UsersProjection()], app=app)
    assert fresh.position == runner.position
    assert fresh.process_batch() is None


def test_replay_from_zero_equals_the_live_projection(app: Parley, settings: Settings) -> None:
    register(app, 5)
    live = ProjectionRunner(settings, [UsersProjection()], app=app)
    drain(live, limit=7)
    app.register_user(Claim("anonymous", "late", "fp"), "late@example.com", "h", "Late", None,
                      "t")
    drain(live, limit=7)
    before = rows(settings)
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("TRUNCATE users")
        conn.execute("DELETE FROM projection_tracking WHERE application_name = 'users'")
    replay = ProjectionRunner(settings, [UsersProjection()], app=app)
    assert replay.position == 0
    drain(replay, limit=7)
    assert rows(settings) == before and len(before) == 6


def test_tracking_refuses_to_apply_a_position_twice(app: Parley, settings: Settings) -> None:
    register(app, 3)
    runner = ProjectionRunner(settings, [UsersProjection()], app=app)
    drain(runner, limit=7)
    runner.positions["users"] = 0  # a confused runner that believes it is behind
    with pytest.raises(Exception, match=r"tracking|IntegrityError|duplicate"):
        runner.process_batch()
    assert len(rows(settings)) == 3
