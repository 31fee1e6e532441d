"""Processes the e2e tests start beside the shared stack, on its servers, with settings of
their own: more API workers, a gateway."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from parley.embedded import set_parent_death_signal
from parley.stack import Stack, StackOptions, start_api


@contextlib.contextmanager
def api_process(stack: Stack, data_dir: Path, env: dict[str, str]) -> Iterator[str]:
    """Two more API workers (as `parley up` runs them) with `env`, on the stack's servers."""
    options = StackOptions(data_dir=data_dir, port=0, workers=2, log_dir=data_dir / "logs")
    base_url, workers = start_api(options, env, {})  # not supervised: the test's own
    try:
        yield base_url
    finally:
        workers.stop()


def start_gateway(stack: Stack, port: int, log: Path,
                  **settings: str) -> subprocess.Popen[bytes]:
    """A gateway process of its own, as compose runs several beside each other (`settings`:
    environment variables of its own)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port)], env={**stack.env, **settings},
            stdout=out, stderr=subprocess.STDOUT, preexec_fn=set_parent_death_signal)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"gateway on {port} did not become ready: {log.read_text()[-2000:]}")
