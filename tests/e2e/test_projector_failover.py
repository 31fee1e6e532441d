"""One projector active, others standing by; `kill -9` of the active one hands over."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import httpx
import psycopg

from parley.embedded.processes import spawn_child
from parley.stack import Stack
from projectors.leadership import PROJECTOR_LOCK
from tests.e2e.client import Api, User

TAKEOVER_DEADLINE = 60.0  # generous for a loaded CI machine; README gives the measured figure


def lock_holders(stack: Stack) -> list[int]:
    """Backend pids holding the projector lock (a bigint key: classid high, objid low)."""
    with psycopg.connect(stack.env["DATABASE_URL"], autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND ((classid::bigint << 32) | objid::bigint) = %s", (PROJECTOR_LOCK,)).fetchall()
    return [r[0] for r in rows]


def wait_for_log(path: Path, text: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"{path.name} never said {text!r}: {path.read_text()[-2000:]}")


def projected_write(api: Api) -> bool:
    """Whether a write right now is answered after the read models reached it."""
    ann = User(api)
    response = ann.post("/chats", {"title": "t", "is_group": True, "member_ids": []})
    assert response.status_code == 201, response.text
    return response.headers["X-Consistency"] == "read-your-writes"


def test_kill_9_of_the_active_projector_hands_over_to_a_standby(
        api: Api, stack: Stack, tmp_path: Path) -> None:
    log = tmp_path / "standby.log"
    standby = spawn_child([sys.executable, "-m", "projectors"], log, env=stack.env)
    try:
        wait_for_log(log, "another projector is active; standing by", time.monotonic() + 60)
        assert len(lock_holders(stack)) == 1
        assert projected_write(api)

        active = stack.processes["projector"]
        active.send_signal(signal.SIGKILL)
        active.wait(10)
        killed_at = time.monotonic()
        wait_for_log(log, "this projector is active", killed_at + TAKEOVER_DEADLINE)
        while not projected_write(api):  # writes made while nobody projected are caught up
            assert time.monotonic() - killed_at < TAKEOVER_DEADLINE
        assert len(lock_holders(stack)) == 1
    finally:
        # the supervisor restarted the killed projector, standing by now: it takes over
        standby.terminate()
        standby.wait(30)


def test_readiness_is_503_while_the_read_models_stall_and_200_once_they_move(
        api: Api, stack: Stack) -> None:
    """The test stack's READY_MAX_STALL is 3 s."""
    projector = stack.processes["projector"]
    ready_again(stack)  # an earlier test may have restarted PostgreSQL
    projector.send_signal(signal.SIGSTOP)
    try:
        User(api)  # an event the read models cannot reach while the projector is stopped
        deadline = time.monotonic() + 30
        while (ready := httpx.get(f"{stack.base_url}/readyz")).status_code == 200:
            assert time.monotonic() < deadline, "readiness never told the truth"
            time.sleep(0.2)
        assert ready.status_code == 503
        assert "read models are not keeping up" in ready.json()["detail"]
    finally:
        projector.send_signal(signal.SIGCONT)
    ready_again(stack)


def ready_again(stack: Stack) -> None:
    deadline = time.monotonic() + 30
    while (ready := httpx.get(f"{stack.base_url}/readyz")).status_code != 200:
        assert time.monotonic() < deadline, ready.text
        time.sleep(0.2)
