"""`parley projections status | rebuild | verify` as an operator runs them: exit codes, the JSON
status, one rebuild per projection at a time, `--fresh`, a shadow of other code discarded,
and a rebuild that never publishes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import nats
import pytest

from domain.app import Parley
from projectors.rebuild import Rebuild
from projectors.runner import LiveProjector, live_projections
from projectors.users import UsersProjection
from shared.settings import Settings
from tests.integration.projection import drain, query, verified
from tests.integration.workload import Workload

ROOT = Path(__file__).resolve().parents[2]


class Interrupted(Exception):
    """A rebuild stopped after its first batch, as a crash would stop it."""


@pytest.fixture
def projected(app: Parley, settings: Settings) -> Iterator[Workload]:
    """A log with some of everything, projected by the live runner."""
    workload = Workload(app, seed=21)
    workload.setup()
    workload.run(60)
    drain(LiveProjector(settings, app=app))
    yield workload


def cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parley.cli", "projections", *args], cwd=ROOT,
                          env={**os.environ, "DATABASE_URL": settings.database_url, **env},
                          capture_output=True, text=True, timeout=120)


def replayed_total(stderr: str) -> int:
    """The events a rebuild replays, from its first progress line ("done/total events")."""
    found = re.search(r"([\d,]+)/([\d,]+) events", stderr)
    assert found, stderr
    return int(found.group(2).replace(",", ""))


def stop_after_first_batch(done: int, total: int) -> None:
    raise Interrupted


def test_verify_exits_0_when_equal_and_1_on_a_difference(
        projected: Workload, settings: Settings) -> None:
    equal = cli(settings, "verify", "--all")
    assert equal.returncode == 0, equal.stdout + equal.stderr
    assert equal.stdout.count(": equal at position") == len(live_projections())
    query(settings, "UPDATE users SET display_name = 'tampered' WHERE id = (SELECT min(id)"
                    " FROM users)")
    different = cli(settings, "verify", "--all")
    assert different.returncode == 1, different.stdout + different.stderr
    assert "users: DIFFERENT" in different.stdout and "tampered" in different.stdout
    assert different.stdout.count(": equal at position") == len(live_projections()) - 1


def test_status_json_has_the_head_and_every_projection(
        app: Parley, projected: Workload, settings: Settings) -> None:
    shown = cli(settings, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    head = app.recorder.max_notification_id()
    assert report["head"] == head == projected.last_position
    assert [(p["name"], p["position"], p["events"]) for p in report["projections"]] == \
        [(p.name, head, 0) for p in live_projections()]


def test_two_rebuilds_of_one_projection_refuse_to_run_at_once(
        app: Parley, projected: Workload, settings: Settings) -> None:
    inside, release = threading.Event(), threading.Event()
    outcome: list[Any] = []

    def progress(done: int, total: int) -> None:  # the first rebuild, held mid-replay
        inside.set()
        assert release.wait(60)

    def first() -> None:
        try:
            outcome.append(Rebuild(settings, [UsersProjection()], app=app, progress=progress,
                                   batch_size=5).run())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert inside.wait(60)
        second = cli(settings, "rebuild", "users")
        other = cli(settings, "rebuild", "chats")  # another projection is not held back
    finally:
        release.set()
        thread.join(60)
    assert second.returncode == 2, second.stderr
    assert "another process is building users__rebuild" in second.stderr
    assert other.returncode == 0, other.stderr
    assert outcome and isinstance(outcome[0], dict) and "users" in outcome[0], outcome
    verified(settings, live_projections(), app)


def test_a_rebuild_resumes_its_shadow_and_fresh_starts_over(
        app: Parley, projected: Workload, settings: Settings) -> None:
    head = projected.last_position
    with pytest.raises(Interrupted):
        Rebuild(settings, [UsersProjection()], app=app, progress=stop_after_first_batch,
                batch_size=5).run()
    [(partial,)] = query(settings, "SELECT notification_id FROM projection_tracking"
                                   " WHERE application_name = 'users__rebuild'")
    assert 0 < partial < head

    fresh = cli(settings, "rebuild", "users", "--fresh", "--batch-size", "5")
    assert fresh.returncode == 0, fresh.stderr
    assert replayed_total(fresh.stderr) == head  # the whole log, from the start

    with pytest.raises(Interrupted):
        Rebuild(settings, [UsersProjection()], app=app, progress=stop_after_first_batch,
                batch_size=5).run()
    resumed = cli(settings, "rebuild", "users", "--batch-size", "5")
    assert resumed.returncode == 0, resumed.stderr
    assert replayed_total(resumed.stderr) < head  # from where the interrupted one stopped
    verified(settings, live_projections(), app)


class WiderUsers(UsersProjection):
    """The users projection as other code has it: one more table in its DDL."""

    ddl: ClassVar[tuple[str, ...]] = (
        *UsersProjection.ddl, "CREATE TABLE IF NOT EXISTS users_extra (id bigint PRIMARY KEY)")


def test_a_shadow_left_by_code_with_another_ddl_is_discarded(
        app: Parley, projected: Workload, settings: Settings) -> None:
    with pytest.raises(Interrupted):
        Rebuild(settings, [WiderUsers()], app=app, progress=stop_after_first_batch,
                batch_size=5).run()
    assert query(settings, "SELECT count(*) FROM pg_tables WHERE schemaname = 'rebuild__users'"
                           " AND tablename = 'users_extra'") == [(1,)]
    rebuilt = cli(settings, "rebuild", "users", "--batch-size", "5")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert replayed_total(rebuilt.stderr) == projected.last_position  # not resumed: rebuilt
    assert query(settings, "SELECT count(*) FROM pg_tables WHERE tablename = 'users_extra'") \
        == [(0,)]
    verified(settings, live_projections(), app)


def test_a_rebuild_never_publishes(projected: Workload, settings: Settings) -> None:
    async def scenario() -> tuple[list[str], subprocess.CompletedProcess[str]]:
        nc = await nats.connect(settings.nats_url)
        seen: list[str] = []

        async def record(msg: Any) -> None:
            seen.append(msg.subject)

        await nc.subscribe(">", cb=record)
        await nc.flush()
        rebuilt = await asyncio.to_thread(cli, settings, "rebuild", "--all",
                                          NATS_URL=settings.nats_url)
        await nc.flush()
        await nc.close()
        return seen, rebuilt

    seen, rebuilt = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "swapped in" in rebuilt.stderr
    assert [s for s in seen if s.startswith("parley.")] == []
