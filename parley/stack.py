"""Run the whole system: embedded (or external) servers plus every Parley process.

Used by `parley up` and by the end-to-end tests, so both exercise the same start-up path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from parley.embedded import ChildProcess, Endpoints, embedded_servers, free_port, spawn_child
from parley.embedded.s3 import storage_origins
from parley.supervisor import Handle, Supervisor, describe_status
from shared.cors import LOCAL_DEV_ORIGINS
from shared.jwt.tokens import ensure_signing_key
from shared.settings import Settings
from shared.web.proxies import TrustedProxies
from shared.web.service import MULTIPROC_DIR

READY_TIMEOUT = 90.0
PORT_ATTEMPTS = 3


@dataclass
class StackOptions:
    """Where the data lives and where the public API listens."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000  # 0: a free port, picked when the API starts (retried if taken meanwhile)
    workers: int = 1
    log_dir: Path | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    nats_servers: int = 1  # embedded NATS: > 1 runs a cluster of that many


@dataclass
class Stack:
    """A running system: its public URL, the environment its processes got, and the processes:
    the current one of each child, a new one after the supervisor restarted it (`supervisor`:
    None for a stack that is not supervised; `storage_origins`: what the embedded S3 answers
    CORS for; None for an external S3)."""

    base_url: str
    env: dict[str, str]
    processes: Mapping[str, Handle]
    storage_origins: str | None = None
    supervisor: Supervisor | None = None


def with_default_cors(env: Mapping[str, str]) -> dict[str, str]:
    """`parley up` is where frontends develop: without CORS_ORIGINS (an empty value counts as
    set: same origin only), pages from any port of this machine may call the API."""
    return {"CORS_ORIGINS": ",".join(LOCAL_DEV_ORIGINS), **env}


def own_origins(options: StackOptions) -> tuple[str, ...]:
    """The origins of pages the API serves itself (none known yet with port 0)."""
    if not options.port:
        return ()
    hosts = ["localhost", "127.0.0.1"]
    if options.host not in ("0.0.0.0", "::", ""):
        hosts.append(f"[{options.host}]" if ":" in options.host else options.host)
    return tuple(dict.fromkeys(f"http://{host}:{options.port}" for host in hosts))


def service_env(endpoints: Endpoints, data_dir: Path, base: Mapping[str, str]) -> dict[str, str]:
    """The configuration every Parley process receives (external servers win over embedded)."""
    env = dict(base)
    env.setdefault("DATABASE_URL", endpoints.database_url)
    env.setdefault("NATS_URL", endpoints.nats_url)
    if not env.get("S3_ENDPOINT"):
        env.update(S3_ENDPOINT=endpoints.s3_endpoint, S3_ACCESS_KEY=endpoints.s3_access_key,
                   S3_SECRET_KEY=endpoints.s3_secret_key, S3_BUCKET=endpoints.s3_bucket)
    env.setdefault("JWT_KEY_FILE", str(ensure_signing_key(data_dir / "jwt_key.pem")))
    env.setdefault("PARLEY_DATA_DIR", str(data_dir))
    return env


def service(name: str, args: list[str], env: Mapping[str, str],
            log_dir: Path | None) -> ChildProcess:
    """Start a Parley process that dies with us (PDEATHSIG) and logs to a file or our terminal;
    restartable by the supervisor."""
    log_file = None if log_dir is None else log_dir / f"{name}.log"
    return ChildProcess(name, lambda: spawn_child(args, log_file, env=dict(env)), log_file)


def wait_ready(base_url: str, processes: Mapping[str, Handle]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        for name, proc in processes.items():
            if (status := proc.poll()) is not None:
                raise RuntimeError(f"{name} exited with {describe_status(status)} during start-up")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the system did not become ready within {READY_TIMEOUT:.0f}s")


def metrics_dir(data_dir: Path) -> Path:
    """Where the API workers keep their metrics, emptied at each start (prometheus_client's
    multiprocess mode: `/metrics` sums all workers, whichever of them answers)."""
    path = data_dir / "metrics"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def start_api(options: StackOptions, env: Mapping[str, str],
              processes: Mapping[str, Handle]) -> tuple[str, ChildProcess]:
    """Start the API workers and wait until ready; returns the public URL and the workers'
    uvicorn (restarted on the same port).

    With port 0 the port is picked just before uvicorn binds it, and picked again if uvicorn
    exits during start-up: another process may take a port between the check and the bind.
    """
    attempts = PORT_ATTEMPTS if options.port == 0 else 1
    env = {**env, MULTIPROC_DIR: env.get(MULTIPROC_DIR) or str(metrics_dir(options.data_dir))}
    # X-Forwarded-For only from TRUSTED_PROXIES (uvicorn's default trusts loopback: under
    # `parley up` every local client could then pick its own address for the rate limits)
    proxies = TrustedProxies(Settings.from_env(env).trusted_proxies).uvicorn_args()
    for attempt in range(1, attempts + 1):
        port = options.port or free_port()
        api = service("api", [
            sys.executable, "-m", "uvicorn", "parley.edge:create_app", "--factory",
            "--host", options.host, "--port", str(port),
            "--workers", str(options.workers), "--no-access-log",
            "--http", "parley.uvicorn_protocol:NoDelayHttpProtocol", *proxies,
            # WebSocket keepalive and the 64 KiB frame bound of the gateway
            "--ws-ping-interval", "20", "--ws-ping-timeout", "20", "--ws-max-size", "65536",
            "--timeout-graceful-shutdown", "5"], env, options.log_dir)
        base_url = f"http://{options.host}:{port}"
        try:
            wait_ready(base_url, {**processes, "api": api.process})
            return base_url, api
        except RuntimeError:
            exited = api.process.poll() is not None
            api.stop()
            if attempt == attempts or not exited:
                raise  # out of attempts, or something other than the API failed
    raise AssertionError("unreachable")


def stop(services: list[ChildProcess]) -> None:
    """SIGTERM every service at once, then wait for each (SIGKILL after a timeout)."""
    for child in services:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    for child in services:
        child.stop()


@contextlib.contextmanager
def running_stack(options: StackOptions) -> Iterator[Stack]:
    """Start servers and processes, wait until `/readyz` answers, keep them running (the
    supervisor restarts what exits), stop everything on exit."""
    base = with_default_cors({**os.environ, **options.extra_env})
    cors = Settings.from_env(base).cors  # a malformed CORS_ORIGINS fails before any server
    embedded_s3 = not base.get("S3_ENDPOINT")
    s3_origins = storage_origins(cors, own_origins(options))
    options.data_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor()
    try:
        with embedded_servers(options.data_dir, postgres=not base.get("DATABASE_URL"),
                              nats=not base.get("NATS_URL"), s3=embedded_s3,
                              s3_origins=s3_origins,
                              nats_servers=options.nats_servers) as endpoints:
            for server in endpoints.servers:  # external servers are someone else's to run
                supervisor.watch(server)
            env = service_env(endpoints, options.data_dir, base)
            services: list[ChildProcess] = []
            try:
                # their pooled PostgreSQL connections do not survive a restart of the server
                restart_with = tuple(s.name for s in endpoints.servers if s.name == "postgres")
                services.append(service("projector", [sys.executable, "-m", "projectors"], env,
                                        options.log_dir))
                supervisor.watch(services[-1], restart_with)
                base_url, api = start_api(options, env, supervisor.processes)
                services.append(api)
                supervisor.watch(api, restart_with)
                supervisor.start()  # a failure during start-up stops it, as it should
                yield Stack(base_url=base_url, env=env, processes=supervisor.processes,
                            storage_origins=s3_origins if embedded_s3 else None,
                            supervisor=supervisor)
            finally:
                supervisor.stop()
                stop(services)
    finally:
        supervisor.join()  # after every child it may have restarted is stopped
