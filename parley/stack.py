"""Run the whole system: embedded (or external) servers plus every Parley process.

Used by `parley up` and by the end-to-end tests, so both exercise the same start-up path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from parley.embedded import Endpoints, embedded_servers, free_port, set_parent_death_signal
from parley.embedded.s3 import storage_origins
from shared.cors import LOCAL_DEV_ORIGINS
from shared.proxies import TrustedProxies
from shared.service import MULTIPROC_DIR
from shared.settings import Settings
from shared.tokens import ensure_signing_key

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


@dataclass
class Stack:
    """A running system: its public URL, the environment its processes got, and the processes
    (`storage_origins`: what the embedded S3 answers CORS for; None for an external S3)."""

    base_url: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    storage_origins: str | None = None


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


def spawn(name: str, args: list[str], env: Mapping[str, str],
          log_dir: Path | None) -> subprocess.Popen[bytes]:
    """Start a child that dies with us (PDEATHSIG) and logs to a file or our terminal."""
    out: int | None = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        out = os.open(log_dir / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        return subprocess.Popen(args, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=set_parent_death_signal)
    finally:
        if out is not None:
            os.close(out)


def stop(processes: Mapping[str, subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    """SIGTERM everything, then SIGKILL what did not exit in time."""
    for proc in processes.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in processes.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(base_url: str, processes: Mapping[str, subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        for name, proc in processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with status {proc.returncode} during start-up")
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
              processes: dict[str, subprocess.Popen[bytes]]) -> str:
    """Start the API workers and wait until ready; returns the public URL.

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
        processes["api"] = spawn("api", [
            sys.executable, "-m", "uvicorn", "parley.edge:create_app", "--factory",
            "--host", options.host, "--port", str(port),
            "--workers", str(options.workers), "--no-access-log",
            "--http", "parley.http:NoDelayHttpProtocol", *proxies,
            # WebSocket keepalive and the 64 KiB frame bound of the gateway
            "--ws-ping-interval", "20", "--ws-ping-timeout", "20", "--ws-max-size", "65536",
            "--timeout-graceful-shutdown", "5"], env, options.log_dir)
        base_url = f"http://{options.host}:{port}"
        try:
            wait_ready(base_url, processes)
            return base_url
        except RuntimeError:
            if attempt == attempts or processes["api"].poll() is None:
                raise  # out of attempts, or something other than the API failed
    raise AssertionError("unreachable")


@contextlib.contextmanager
def running_stack(options: StackOptions) -> Iterator[Stack]:
    """Start servers and processes, wait until `/readyz` answers, stop everything on exit."""
    base = with_default_cors({**os.environ, **options.extra_env})
    cors = Settings.from_env(base).cors  # a malformed CORS_ORIGINS fails before any server
    embedded_s3 = not base.get("S3_ENDPOINT")
    s3_origins = storage_origins(cors, own_origins(options))
    options.data_dir.mkdir(parents=True, exist_ok=True)
    with embedded_servers(options.data_dir, postgres=not base.get("DATABASE_URL"),
                          nats=not base.get("NATS_URL"), s3=embedded_s3,
                          s3_origins=s3_origins) as endpoints:
        env = service_env(endpoints, options.data_dir, base)
        python = sys.executable
        processes: dict[str, subprocess.Popen[bytes]] = {}
        try:
            processes["projector"] = spawn("projector", [python, "-m", "projectors"], env,
                                           options.log_dir)
            base_url = start_api(options, env, processes)
            yield Stack(base_url=base_url, env=env, processes=processes,
                        storage_origins=s3_origins if embedded_s3 else None)
        finally:
            stop(processes)
