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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from parley.embedded import ChildProcess, Endpoints, embedded_servers, free_port, spawn_child
from parley.embedded.router import ROUTER_ADDRESS, Upstreams, caddyfile, router
from parley.embedded.s3 import storage_origins
from parley.supervisor import Handle, Supervisor, describe_status
from shared.cors import LOCAL_DEV_ORIGINS
from shared.jwt.tokens import ensure_signing_key
from shared.settings import Settings
from shared.web.proxies import TrustedProxies
from shared.web.service import MULTIPROC_DIR

READY_TIMEOUT = 90.0
PORT_ATTEMPTS = 3


@dataclass(frozen=True)
class ClusterShape:
    """How many processes of each service `parley up --cluster` runs behind its router."""

    command_apis: int = 2
    query_apis: int = 2
    gateways: int = 2
    projectors: int = 2  # one active, the others standing by on the advisory lock

    @classmethod
    def each(cls, count: int) -> ClusterShape:
        """`count` processes of every service."""
        return cls(count, count, count, count)


@dataclass
class StackOptions:
    """Where the data lives and where the public API listens; `cluster`: separate processes
    per service behind a router instead of the API workers (`workers` is then unused)."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000  # 0: a free port, picked when the API starts (retried if taken meanwhile)
    workers: int = 1
    log_dir: Path | None = None
    replica: bool = False  # an embedded PostgreSQL streaming replica serving the reads
    extra_env: Mapping[str, str] = field(default_factory=dict)
    nats_servers: int = 1  # embedded NATS: > 1 runs a cluster of that many
    cluster: ClusterShape | None = None


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
    listeners: Mapping[str, str] = field(default_factory=dict)  # process name -> its URL


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
    env.setdefault("READ_DATABASE_URL", endpoints.read_database_url)
    env.setdefault("NATS_URL", endpoints.nats_url)
    if len(seeds := [url for url in endpoints.nats_url.split(",") if url]) > 1:
        # the embedded NATS cluster: the stream on every member (JetStream allows 5 at most)
        env.setdefault("NATS_REPLICAS", str(min(len(seeds), 5)))
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


def metrics_dir(data_dir: Path) -> Path:
    """Where the API workers keep their metrics, emptied at each start (prometheus_client's
    multiprocess mode: `/metrics` sums all workers, whichever of them answers)."""
    path = data_dir / "metrics"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


SERVICE_APPS = {"command-api": "command_api.app:create_app",
                "query-api": "query_api.app:create_app",
                "gateway": "gateway.app:create_app"}
# WebSocket keepalive and the 64 KiB frame bound of the gateway
WS_ARGS = ("--ws-ping-interval", "20", "--ws-ping-timeout", "20", "--ws-max-size", "65536")
# An idle keep-alive connection is for the client to close, not us: with uvicorn's 5 s, a client
# whose pool keeps connections 5 s too (httpx's default) sometimes sends a request on one the
# server is closing at that moment and gets "Server disconnected without sending a response"
# (seen in CI). Browsers retry such a request; httpx and most SDKs do not.
KEEP_ALIVE_ARGS = ("--timeout-keep-alive", "75")


def _answers(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=2).status_code == 200
    return False


def listening(starters: Mapping[str, Callable[[int], ChildProcess]], host: str, port: int,
              ready_path: str, processes: Mapping[str, Handle],
              services: list[ChildProcess]) -> dict[str, tuple[int, ChildProcess]]:
    """Start every child at once, each on `port` (0: a free one of its own), and wait until
    each answers `ready_path` with 200; the started ones join `services` (stopped by the
    caller). A child that exits during start-up on a port picked for it starts again on
    another (someone may take a port between the check and the bind), `PORT_ATTEMPTS` times.
    """
    started: dict[str, tuple[int, ChildProcess]] = {}
    attempts = dict.fromkeys(starters, 0)

    def start(name: str) -> None:
        attempts[name] += 1
        chosen = port or free_port()
        started[name] = (chosen, starters[name](chosen))
        services.append(started[name][1])

    for name in starters:
        start(name)
    waiting, deadline = set(starters), time.monotonic() + READY_TIMEOUT
    while waiting:
        for name, proc in processes.items():
            if (status := proc.poll()) is not None:
                raise RuntimeError(f"{name} exited with {describe_status(status)} during start-up")
        for name in sorted(waiting):
            chosen, child = started[name]
            if (status := child.process.poll()) is not None:
                if port or attempts[name] == PORT_ATTEMPTS:
                    raise RuntimeError(f"{name} exited with {describe_status(status)} during "
                                       "start-up")
                services.remove(child)
                child.stop()
                start(name)
            elif _answers(f"http://{host}:{chosen}{ready_path}"):
                waiting.discard(name)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{', '.join(sorted(waiting))} did not become ready within "
                               f"{READY_TIMEOUT:.0f}s")
        time.sleep(0.2)
    return started


def service_command(app: str, port: int, env: Mapping[str, str]) -> list[str]:
    """One service on its own uvicorn process (internal: on 127.0.0.1), as compose runs it."""
    proxies = TrustedProxies(Settings.from_env(env).trusted_proxies).uvicorn_args()
    return [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--no-access-log",
            "--http", "parley.uvicorn_protocol:NoDelayHttpProtocol", *proxies, *WS_ARGS,
            *KEEP_ALIVE_ARGS, "--timeout-graceful-shutdown", "5"]


def start_api(options: StackOptions, env: Mapping[str, str],
              processes: Mapping[str, Handle]) -> tuple[str, ChildProcess]:
    """Start the API workers and wait until ready; returns the public URL and the workers'
    uvicorn (restarted on the same port; with port 0 the port is picked as `listening` does).
    """
    env = {**env, MULTIPROC_DIR: env.get(MULTIPROC_DIR) or str(metrics_dir(options.data_dir))}
    # X-Forwarded-For only from TRUSTED_PROXIES (uvicorn's default trusts loopback: under
    # `parley up` every local client could then pick its own address for the rate limits)
    proxies = TrustedProxies(Settings.from_env(env).trusted_proxies).uvicorn_args()

    def api(port: int) -> ChildProcess:
        return service("api", [
            sys.executable, "-m", "uvicorn", "parley.edge:create_app", "--factory",
            "--host", options.host, "--port", str(port),
            "--workers", str(options.workers), "--no-access-log",
            "--http", "parley.uvicorn_protocol:NoDelayHttpProtocol", *proxies, *WS_ARGS,
            *KEEP_ALIVE_ARGS, "--timeout-graceful-shutdown", "5"], env, options.log_dir)

    started: list[ChildProcess] = []
    try:
        ((port, workers),) = listening({"api": api}, options.host, options.port, "/readyz",
                                       processes, started).values()
    except RuntimeError:
        stop(started)
        raise
    return f"http://{options.host}:{port}", workers


def start_cluster(options: StackOptions, shape: ClusterShape, env: Mapping[str, str],
                  supervisor: Supervisor, services: list[ChildProcess],
                  restart_with: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """`parley up --cluster`: every service in processes of its own, the projectors standing
    by for each other, Caddy on the public port; returns its URL and where each listens.

    The services believe `X-Forwarded-For` from the router's own address (and from the
    proxies the operator trusts in front of the router, whose hops it passes on)."""
    in_front = Settings.from_env(env).trusted_proxies
    env = {**env, "TRUSTED_PROXIES": ",".join((ROUTER_ADDRESS, *in_front))}
    env.pop(MULTIPROC_DIR, None)  # one process per service: its /metrics are its own
    for number in range(1, shape.projectors + 1):
        services.append(service(f"projector-{number}", [sys.executable, "-m", "projectors"],
                                env, options.log_dir))
        supervisor.watch(services[-1], restart_with, peer=True)
    counts = {"command-api": shape.command_apis, "query-api": shape.query_apis,
              "gateway": shape.gateways}
    starters = {f"{kind}-{number}": _service_starter(f"{kind}-{number}", SERVICE_APPS[kind],
                                                     env, options.log_dir)
                for kind, count in counts.items() for number in range(1, count + 1)}
    started = listening(starters, "127.0.0.1", 0, "/readyz", supervisor.processes, services)
    for _, child in started.values():
        supervisor.watch(child, restart_with, peer=True)

    def group(kind: str) -> tuple[str, ...]:
        return tuple(f"127.0.0.1:{port}" for name, (port, _) in started.items()
                     if name.startswith(f"{kind}-"))

    upstreams = Upstreams(group("command-api"), group("query-api"), group("gateway"))
    log_file = None if options.log_dir is None else options.log_dir / "router.log"
    (port, proxy), = listening(
        {"router": lambda port: router(options.data_dir, caddyfile(options.host, port, upstreams,
                                                                   in_front), log_file)},
        options.host, options.port, "/healthz", supervisor.processes, services).values()
    supervisor.watch(proxy)
    listeners = {"router": f"http://{options.host}:{port}",
                 **{name: f"http://127.0.0.1:{port}" for name, (port, _) in started.items()}}
    return listeners["router"], listeners


def _service_starter(name: str, app: str, env: Mapping[str, str],
                     log_dir: Path | None) -> Callable[[int], ChildProcess]:
    return lambda port: service(name, service_command(app, port, env), env, log_dir)


def start_single(options: StackOptions, env: Mapping[str, str], supervisor: Supervisor,
                 services: list[ChildProcess], restart_with: tuple[str, ...]) -> str:
    """`parley up`: the projector, and the API workers serving every service on one port."""
    services.append(service("projector", [sys.executable, "-m", "projectors"], env,
                            options.log_dir))
    supervisor.watch(services[-1], restart_with)
    base_url, api = start_api(options, env, supervisor.processes)
    services.append(api)
    supervisor.watch(api, restart_with)
    return base_url


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
                              replica=options.replica,
                              nats_servers=options.nats_servers) as endpoints:
            for server in endpoints.servers:  # external servers are someone else's to run
                supervisor.watch(server)
            env = service_env(endpoints, options.data_dir, base)
            services: list[ChildProcess] = []
            try:
                # their pooled PostgreSQL connections do not survive a restart of the server
                restart_with = tuple(s.name for s in endpoints.servers if s.name == "postgres")
                if options.cluster is not None:
                    base_url, listeners = start_cluster(options, options.cluster, env,
                                                        supervisor, services, restart_with)
                else:
                    base_url = start_single(options, env, supervisor, services, restart_with)
                    listeners = {"api": base_url}
                supervisor.start()  # a failure during start-up stops it, as it should
                yield Stack(base_url=base_url, env=env, processes=supervisor.processes,
                            storage_origins=s3_origins if embedded_s3 else None,
                            supervisor=supervisor, listeners=listeners)
            finally:
                supervisor.stop()
                stop(services)
    finally:
        supervisor.join()  # after every child it may have restarted is stopped
