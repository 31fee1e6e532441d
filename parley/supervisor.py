"""Keep `parley up` running: restart a child process that exits, with backoff, until it
crash-loops.

Children are watched in the order they were added (the embedded servers first, then the Parley
processes that use them). A child that exits is restarted after a delay that starts at
`first_delay` and doubles up to `max_delay`, back to `first_delay` once a child stayed up for
`stable_after`. A child is restarted only while every child added before it runs, and an exit
while one of those is down is not held against it: the projector losing PostgreSQL is not a
crash loop of the projector. Peers (`peer=True`: one of several copies of a service) are not
waited for by the children after them: a dead command API holds up no other process's restart.
A child that exits `max_exits` times within `window` seconds
stops the supervision: `failure` says which child and where its log is. A child may name
children it is restarted with (`restart_with`): the API processes keep pooled connections to
an embedded PostgreSQL that do not survive its restart.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

UNKNOWN_STATUS = 1 << 16  # an exit status nobody could read (a process that is not our child)


def describe_status(status: int) -> str:
    """An exit status as Popen reports it, in words: 'status 1', 'signal SIGKILL'."""
    if status == UNKNOWN_STATUS:
        return "status unknown"
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-status).name}"
    return f"status {status}"


class Handle(Protocol):
    """A running process (subprocess.Popen, or the daemonized postmaster)."""

    @property
    def pid(self) -> int: ...
    def poll(self) -> int | None: ...
    def send_signal(self, sig: int) -> None: ...


class Restartable(Protocol):
    """A child that can be started again as before: same command, ports and data."""

    @property
    def name(self) -> str: ...
    @property
    def log_file(self) -> Path | None: ...
    @property
    def process(self) -> Handle: ...
    def restart(self) -> Handle: ...


@dataclass
class _Watched:
    child: Restartable
    up_since: float
    delay: float
    exits: deque[float] = field(default_factory=deque)  # times of exits held against it
    restart_at: float | None = None  # set while it is down and waiting for its restart
    held: bool = False
    restart_with: tuple[str, ...] = ()
    peer: bool = False  # the children after it do not need it


class Supervisor:
    """Watches children from a thread of its own and restarts them (see the module docstring)."""

    def __init__(self, *, first_delay: float = 0.5, max_delay: float = 10.0,
                 stable_after: float = 30.0, max_exits: int = 5, window: float = 60.0,
                 interval: float = 0.1, out: TextIO = sys.stderr) -> None:
        self.first_delay, self.max_delay, self.stable_after = first_delay, max_delay, stable_after
        self.max_exits, self.window, self.interval, self.out = max_exits, window, interval, out
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.Lock()  # held while checking or restarting, and by stop()
        self._stopping = threading.Event()
        self.failed = threading.Event()
        self.failure = ""
        self._thread: threading.Thread | None = None

    def watch(self, child: Restartable, restart_with: tuple[str, ...] = (), *,
              peer: bool = False) -> None:
        """Watch a started child (after the ones watched before it); it is also restarted
        whenever one of `restart_with` was (its connections to that one did not survive).
        A `peer` is restarted after the ones before it, but the ones after it never wait for
        it (the copies of a service in a cluster)."""
        with self._lock:
            self._watched[child.name] = _Watched(child, time.monotonic(), self.first_delay,
                                                 restart_with=restart_with, peer=peer)

    @property
    def processes(self) -> Mapping[str, Handle]:
        """The current process of each child, live: a new one after each restart."""
        return _Processes(self._watched)

    def start(self) -> None:
        """Begin restarting children that exit. Restarted children get PDEATHSIG from this
        thread, so it lives until they are all stopped (`stop`, then the thread ends)."""
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """No more restarts: from now on exits are the owners stopping their children."""
        with self._lock:
            self._stopping.set()

    def join(self) -> None:
        """End the thread (once every child it restarted is stopped)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    @contextlib.contextmanager
    def held(self, name: str) -> Iterator[None]:
        """Do not restart `name` during the block (to see what the others do without it)."""
        with self._lock:
            self._watched[name].held = True
        try:
            yield
        finally:
            with self._lock:
                self._watched[name].held = False

    def _run(self) -> None:
        try:
            while not self._stopping.wait(self.interval) and not self.failed.is_set():
                with self._lock:
                    if self._stopping.is_set():
                        break
                    self._check()
        except Exception as exc:  # never die silently: `parley up` stops on `failed`
            self._fail(f"the supervisor failed: {exc!r}")
        self._stopping.wait()  # keep our restarted children's PDEATHSIG thread alive

    def _check(self) -> None:
        dependencies_up = True  # every child watched before this one is running
        for watched in self._watched.values():
            if watched.restart_at is None:
                status = watched.child.process.poll()
                if status is not None:
                    self._exited(watched, status, counted=dependencies_up)
            elif (dependencies_up and not watched.held
                  and time.monotonic() >= watched.restart_at):
                self._restart(watched)
            if self.failed.is_set():
                return
            dependencies_up = dependencies_up and (watched.peer or watched.restart_at is None)

    def _exited(self, watched: _Watched, status: int | str, counted: bool) -> None:
        name, now = watched.child.name, time.monotonic()
        if now - watched.up_since >= self.stable_after:
            watched.delay = self.first_delay
        if counted:
            watched.exits.append(now)
        while watched.exits and now - watched.exits[0] > self.window:
            watched.exits.popleft()
        what = describe_status(status) if isinstance(status, int) else status
        if len(watched.exits) >= self.max_exits:
            self._fail(f"{name} exited {len(watched.exits)} times within {self.window:.0f}s "
                       f"(last: {what}); giving up. See its log: {self._log_of(watched)}")
            return
        event = (f"(pid {watched.child.process.pid}) exited with {what}"
                 if isinstance(status, int) else f"could not start: {status}")
        self._say(f"{name} {event}; restarting in {watched.delay:.1f}s")
        watched.restart_at = now + watched.delay
        watched.delay = min(watched.delay * 2, self.max_delay)

    def _restart(self, watched: _Watched) -> None:
        watched.restart_at = None
        watched.up_since = time.monotonic()
        try:
            process = watched.child.restart()
        except Exception as exc:  # could not start: an exit like any other
            self._exited(watched, repr(exc), counted=True)
            return
        name = watched.child.name
        self._say(f"{name} restarted (pid {process.pid})")
        for other in self._watched.values():
            if name in other.restart_with:
                if other.restart_at is None:
                    self._say(f"restarting {other.child.name} as well: its connections to "
                              f"{name} did not survive the restart")
                other.restart_at = time.monotonic()

    def _log_of(self, watched: _Watched) -> str:
        log_file = watched.child.log_file
        return str(log_file) if log_file is not None else "the output above"

    def _fail(self, message: str) -> None:
        self.failure = message
        self._say(message)
        self.failed.set()

    def _say(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} parley supervisor: {message}", file=self.out, flush=True)


class _Processes(Mapping[str, Handle]):
    def __init__(self, watched: dict[str, _Watched]) -> None:
        self._watched = watched

    def __getitem__(self, name: str) -> Handle:
        return self._watched[name].child.process

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._watched))

    def __len__(self) -> int:
        return len(self._watched)
