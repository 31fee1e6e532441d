"""The supervisor of `parley up` on real (tiny) processes: backoff, and giving up on a loop."""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

import psutil

from parley.embedded import ChildProcess, spawn_child, wait_for
from parley.supervisor import Supervisor


def python_child(name: str, code: str, log: Path) -> ChildProcess:
    return ChildProcess(name, lambda: spawn_child([sys.executable, "-c", code], log), log)


def supervised(child: ChildProcess, **options: float) -> tuple[Supervisor, io.StringIO]:
    out = io.StringIO()
    supervisor = Supervisor(out=out, **options)  # type: ignore[arg-type]
    supervisor.watch(child)
    supervisor.start()
    return supervisor, out


def test_a_child_that_exits_at_once_every_time_makes_the_supervisor_give_up(
        tmp_path: Path) -> None:
    log = tmp_path / "crasher.log"
    crasher = python_child("crasher", "raise SystemExit(3)", log)
    supervisor, out = supervised(crasher, first_delay=0.1, max_delay=0.4)
    try:
        assert supervisor.failed.wait(60), out.getvalue()
    finally:
        supervisor.stop()
        supervisor.join()
    assert supervisor.failure == ("crasher exited 5 times within 60s (last: status 3); "
                                  f"giving up. See its log: {log}")
    lines = out.getvalue().splitlines()
    # four restarts, each after a doubled delay up to the cap, then the verdict
    delays = [float(d) for d in re.findall(r"exited with status 3; restarting in ([\d.]+)s",
                                           out.getvalue())]
    assert delays == [0.1, 0.2, 0.4, 0.4], lines
    assert len([line for line in lines if "crasher restarted (pid" in line]) == 4
    assert lines[-1].endswith(supervisor.failure)
    assert crasher.process.poll() == 3


def test_a_child_that_stayed_up_restarts_after_the_first_delay_again(tmp_path: Path) -> None:
    log = tmp_path / "flaky.log"
    flaky = python_child("flaky", "import time; time.sleep(0.5); raise SystemExit(1)", log)
    supervisor, out = supervised(flaky, first_delay=0.1, max_delay=5, stable_after=0.3,
                                 max_exits=3)
    try:
        assert supervisor.failed.wait(60), out.getvalue()
    finally:
        supervisor.stop()
        supervisor.join()
    delays = re.findall(r"restarting in ([\d.]+)s", out.getvalue())
    assert delays == ["0.1", "0.1"], out.getvalue()  # not 0.1, 0.2: it was up for a while
    assert supervisor.failure.startswith("flaky exited 3 times within 60s (last: status 1)")


def test_a_killed_child_is_restarted_and_stopped_with_its_whole_group(tmp_path: Path) -> None:
    log = tmp_path / "parent.log"
    # a parent whose own child outlives it, as uvicorn's workers outlive a SIGKILLed uvicorn
    code = ("import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
            "print('up', flush=True); time.sleep(600)")
    parent = python_child("parent", code, log)
    supervisor, out = supervised(parent)
    try:
        first = parent.process
        first.kill()
        _wait_for_new_pid(supervisor, "parent", first.pid)
        assert (f"parent (pid {first.pid}) exited with signal SIGKILL; restarting in 0.5s"
                in out.getvalue())
        # its orphan was killed with it (SIGKILL takes effect a moment after it is sent)
        wait_for(lambda: not _group_alive(first.pid), 10, "the first group's end")
    finally:
        supervisor.stop()
        parent.stop()
        supervisor.join()
    wait_for(lambda: not _group_alive(parent.process.pid), 10, "the last group's end")


def test_a_dead_peer_holds_up_no_restart_of_the_children_after_it(tmp_path: Path) -> None:
    sleeper = "import time; time.sleep(600)"
    first = python_child("api-1", sleeper, tmp_path / "api-1.log")
    second = python_child("api-2", sleeper, tmp_path / "api-2.log")
    supervisor = Supervisor(out=io.StringIO(), first_delay=0.1)
    supervisor.watch(first, peer=True)
    supervisor.watch(second, peer=True)
    supervisor.start()
    try:
        with supervisor.held("api-1"):  # the first peer stays down meanwhile
            old = (first.process, second.process)
            for process in old:
                process.kill()
            _wait_for_new_pid(supervisor, "api-2", old[1].pid)
            assert supervisor.processes["api-1"] is old[0]
    finally:
        supervisor.stop()
        first.stop()
        second.stop()
        supervisor.join()


def _wait_for_new_pid(supervisor: Supervisor, name: str, old: int) -> None:
    wait_for(lambda: supervisor.processes[name].pid != old, 30, f"{name} restart")


def _group_alive(pgid: int) -> bool:
    """True while a process of the group runs (a killed one may wait a moment to be reaped)."""
    def running(proc: psutil.Process) -> bool:
        try:
            return os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE
        except (ProcessLookupError, psutil.Error):
            return False

    return any(running(proc) for proc in psutil.process_iter())
