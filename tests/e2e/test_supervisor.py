"""`kill -9` of any one process of the running system: the supervisor brings it back, and the
system serves writes with read-your-writes again within a bound, without a person acting."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from parley.embedded import set_parent_death_signal, wait_for
from parley.stack import Stack
from tests.e2e.client import Api, User
from tests.e2e.test_attachments import AUDIO, presign, upload

RECOVERY_BOUND = 60.0  # seconds; measured figures are in the README (Operations)


def serves_a_write_and_its_read(api: Api) -> bool:
    """A write gets 201 with read-your-writes, and another member reads it at once."""
    try:
        ann, bob = User(api), User(api)
        created = ann.post("/chats", {"title": "after", "is_group": True, "member_ids": [bob.id]})
        return (created.status_code == 201
                and created.headers.get("X-Consistency") == "read-your-writes"
                and bob.get(f"/chats/{created.json()['id']}").status_code == 200)
    except (AssertionError, httpx.HTTPError):  # a 503 or a refused connection while it recovers
        return False


def recovery_time(api: Api, stack: Stack, kill: Callable[[], None]) -> float:
    """Kill, then poll until the system serves again; the seconds it took."""
    assert serves_a_write_and_its_read(api)
    killed = time.monotonic()
    kill()
    while not serves_a_write_and_its_read(api):
        assert time.monotonic() - killed < RECOVERY_BOUND, "not serving again in time"
        time.sleep(0.2)
    took = time.monotonic() - killed
    wait_for(lambda: httpx.get(f"{stack.base_url}/readyz").status_code == 200, RECOVERY_BOUND,
             "readiness")
    print(f"serving again {took:.1f}s after the kill")  # shown with -s
    return took


def kill_child(stack: Stack, name: str) -> Callable[[], None]:
    """SIGKILL the current process of `name` and wait until the supervisor replaced it."""
    def kill() -> None:
        old = stack.processes[name]
        old.send_signal(signal.SIGKILL)
        wait_for(lambda: stack.processes[name].pid != old.pid, RECOVERY_BOUND, f"{name} restart")
    return kill


@pytest.mark.parametrize("name", ["projector", "nats", "postgres", "api", "s3"])
def test_a_killed_child_is_restarted_and_the_system_serves_again(
        api: Api, stack: Stack, name: str) -> None:
    assert recovery_time(api, stack, kill_child(stack, name)) < RECOVERY_BOUND


def test_a_killed_api_worker_is_replaced_by_uvicorn(api: Api, stack: Stack) -> None:
    uvicorn = psutil.Process(stack.processes["api"].pid)

    def workers() -> list[psutil.Process]:
        return [p for p in uvicorn.children() if "spawn_main" in " ".join(p.cmdline())]

    before = workers()
    assert len(before) == 2

    def kill() -> None:
        before[0].kill()

    assert recovery_time(api, stack, kill) < RECOVERY_BOUND
    # uvicorn itself started a new worker; the group as a whole was not restarted
    wait_for(lambda: len(workers()) == 2 and before[0] not in workers(), RECOVERY_BOUND,
             "a new worker")
    assert stack.processes["api"].pid == uvicorn.pid


def test_killed_storage_comes_back_on_its_port_with_its_objects(api: Api, stack: Stack) -> None:
    ann = User(api)

    def uploads() -> bool:
        try:
            return upload(presign(ann)).status_code == 204
        except httpx.HTTPError:
            return False

    # an earlier test may have restarted storage a moment ago: a new process, not yet serving
    wait_for(uploads, RECOVERY_BOUND, "storage serving before the test")
    before = presign(ann)
    assert upload(before).status_code == 204
    kill_child(stack, "s3")()
    wait_for(uploads, RECOVERY_BOUND, "an upload to the restarted storage")
    download = ann.get(f"/attachments/{before['attachment_id']}")
    assert httpx.get(download.json()["url"]).content == AUDIO


def test_parley_up_stops_with_a_clear_message_when_a_child_crash_loops(tmp_path: Path) -> None:
    up = subprocess.Popen([sys.executable, "-m", "parley.cli", "up", "--port", "0", "--quiet",
                           "--data-dir", str(tmp_path), "--workers", "1"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=set_parent_death_signal)
    try:
        assert up.stdout is not None and up.stdout.readline().startswith("Parley is up")

        def projector() -> psutil.Process | None:
            for child in psutil.Process(up.pid).children():
                with contextlib.suppress(psutil.Error):  # a killed one, not yet reaped
                    if child.cmdline()[-2:] == ["-m", "projectors"]:
                        return child
            return None

        killed: list[int] = []
        while up.poll() is None and len(killed) < 5:  # each of them as soon as it is back
            current = projector()
            if current is not None and current.pid not in killed:
                current.kill()
                killed.append(current.pid)
            time.sleep(0.05)
        _, err = up.communicate(timeout=120)
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 1, err
    log = tmp_path.resolve() / "logs" / "projector.log"
    assert (f"stopping: projector exited 5 times within 60s (last: signal SIGKILL); giving up. "
            f"See its log: {log}") in err
    assert not [p for p in psutil.process_iter(["cmdline"])
                if str(tmp_path) in " ".join(p.info["cmdline"] or [])]
