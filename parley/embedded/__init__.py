"""Run PostgreSQL, NATS JetStream and SeaweedFS S3 as child processes of this Python process.

Every server keeps its data under one directory, listens on 127.0.0.1 or a unix socket of its
own (never the system servers' 5432/4222) and is stopped when its context manager exits.
nats-server and weed get PR_SET_PDEATHSIG, which fires when the *thread* that started them
exits, so start servers from the main thread (or one that lives as long as they should).
pg_ctl daemonizes postgres: after a SIGKILLed parent it lives on until the next start on the
same directory adopts it (and stops it on exit).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from parley.embedded.nats_server import embedded_nats, nats_cluster, nats_server
from parley.embedded.postgres import embedded_postgres, postgres_server, replica_server
from parley.embedded.processes import (
    ChildProcess,
    adopt,
    free_port,
    set_parent_death_signal,
    spawn_child,
    wait_for,
)
from parley.embedded.s3 import embedded_s3, s3_server
from parley.supervisor import Restartable

__all__ = ["ChildProcess", "Endpoints", "adopt", "data_dir_lock", "embedded_nats",
           "embedded_postgres", "embedded_s3", "embedded_servers", "free_port", "nats_cluster",
           "set_parent_death_signal", "spawn_child", "wait_for"]

log = logging.getLogger(__name__)

LOCK_WAIT = 60.0  # how long a second owner of a data directory waits for the first to stop


@dataclass(frozen=True)
class Endpoints:
    """Connection details of the started servers ("" for servers that were not started) and
    their processes, to restart on the same ports and data should one exit."""

    database_url: str = ""
    read_database_url: str = ""  # the streaming replica, when one was asked for
    nats_url: str = ""
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = ""
    servers: tuple[Restartable, ...] = ()


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn an unhandled SIGTERM into SystemExit meanwhile, so finally blocks stop the servers."""
    install = (threading.current_thread() is threading.main_thread()
               and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
    if install:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        if install:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def data_dir_lock(data_dir: Path, wait: float = LOCK_WAIT) -> Iterator[None]:
    """Own `data_dir` for the block: one set of servers per directory.

    Without it a second `parley up` started while the first is still stopping would take the
    first one's servers for leftovers of a crash and kill or reuse them under it. The flock
    dies with our process, crash included, so a crashed owner never blocks the next start.
    """
    with open(data_dir / ".lock", "a+") as handle:
        deadline = time.monotonic() + wait
        waiting = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip() or "unknown"
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"{data_dir} is in use by another Parley process "
                                       f"(pid {owner})") from None
                if not waiting:
                    log.warning("waiting for the Parley process using %s (pid %s) to stop",
                                data_dir, owner)
                    waiting = True
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield


@contextlib.contextmanager
def embedded_servers(data_dir: Path, *, postgres: bool = True, nats: bool = True,
                     s3: bool = True, bucket: str = "attachments",
                     s3_origins: str = "*", replica: bool = False,
                     nats_servers: int = 1) -> Iterator[Endpoints]:
    """Start the selected servers with data under `data_dir`; stop all of them on exit
    (`s3_origins`: the pages S3 answers CORS for, see `embedded.s3.storage_origins`;
    `replica`: a streaming replica of the PostgreSQL, for reads; `nats_servers` > 1: a NATS
    cluster of that many, `nats_url` then lists every seed)."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_sigterm_raises())
        if postgres or nats or s3:
            stack.enter_context(data_dir_lock(data_dir))
        fields: dict[str, str] = {}
        servers: list[Restartable] = []
        if postgres:
            fields["database_url"], pg = stack.enter_context(postgres_server(data_dir))
            servers.append(pg)
            if replica:  # after the primary: the supervisor restarts it only while that runs
                fields["read_database_url"], standby = stack.enter_context(
                    replica_server(data_dir, pg))
                servers.append(standby)
        if nats and nats_servers > 1:
            fields["nats_url"], cluster = stack.enter_context(
                nats_cluster(data_dir, nats_servers))
            servers.extend(cluster)
        elif nats:
            fields["nats_url"], nats_process = stack.enter_context(nats_server(data_dir))
            servers.append(nats_process)
        if s3:
            (endpoint, access, secret), s3_process = stack.enter_context(
                s3_server(data_dir, bucket, s3_origins))
            fields.update(s3_endpoint=endpoint, s3_access_key=access, s3_secret_key=secret,
                          s3_bucket=bucket)
            servers.append(s3_process)
        yield Endpoints(**fields, servers=tuple(servers))
