"""A client that goes away mid-request is not a server error: no 500, no traceback."""

from __future__ import annotations

import re
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from parley.stack import Stack
from tests.e2e.client import Api, User


def posts_answered(base_url: str, status: int) -> float:
    """POSTs the command API answered with `status`, over all API workers (`parley up` sums
    its workers' metrics, whichever of them answers the scrape)."""
    text = httpx.get(f"{base_url}/metrics").text
    found = re.search(r'^parley_http_requests_total\{method="POST",service="command",'
                      rf'status="{status}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_post_whose_client_leaves_mid_body_is_499_and_no_traceback(stack: Stack) -> None:
    user = User(Api(stack.base_url))
    log = Path(stack.env["PARLEY_DATA_DIR"]) / "logs" / "api.log"  # tests/conftest.py's
    log_size = log.stat().st_size
    closed, failed = posts_answered(stack.base_url, 499), posts_answered(stack.base_url, 500)
    url = urlsplit(stack.base_url)
    with socket.create_connection((url.hostname, url.port)) as raw:
        raw.sendall(
            b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + user.token.encode() + b"\r\n"
            b"Idempotency-Key: " + str(uuid.uuid4()).encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"chat_id\": 1")
        time.sleep(0.2)  # the handler is waiting for the rest of the body
    deadline = time.monotonic() + 15
    while posts_answered(stack.base_url, 499) < closed + 1:
        assert time.monotonic() < deadline, "the abandoned request was never counted"
        time.sleep(0.1)
    assert posts_answered(stack.base_url, 500) == failed
    with open(log, "rb") as out:
        out.seek(log_size)
        written = out.read().decode(errors="replace")
    assert "ClientDisconnect" not in written and "Exception in ASGI" not in written, written


def posts_by_worker(stack: Stack, status: int) -> dict[str, float]:
    """POSTs answered with `status`, per API worker: each worker process keeps its counters in
    a file of its own in the metrics dir, read here one at a time."""
    counts = {}
    for file in (Path(stack.env["PARLEY_DATA_DIR"]) / "metrics").glob("counter_*.db"):
        with tempfile.TemporaryDirectory() as alone:
            shutil.copy(file, alone)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=alone)
            counts[file.name] = registry.get_sample_value(
                "parley_http_requests_total",
                {"method": "POST", "service": "command", "status": str(status)}) or 0.0
    return counts


def test_metrics_count_every_worker(stack: Stack) -> None:
    """Requests on fresh connections until both workers answered some: `/metrics`, whichever
    worker serves it, counts every one of them."""
    before, by_worker = posts_answered(stack.base_url, 401), posts_by_worker(stack, 401)
    sent = 0
    while sent < 20 or sum(1 for name, count in posts_by_worker(stack, 401).items()
                           if count > by_worker.get(name, 0.0)) < 2:
        assert sent < 400, f"one worker answered all {sent}: {posts_by_worker(stack, 401)}"
        with httpx.Client() as fresh:  # a connection of its own: any worker may take it
            assert fresh.post(f"{stack.base_url}/api/v1/messages", json={}).status_code == 401
        sent += 1
    # a worker counts a request just after sending its answer: allow it that moment
    deadline = time.monotonic() + 10
    while (counted := posts_answered(stack.base_url, 401)) < before + sent:
        assert time.monotonic() < deadline, f"counted {counted - before} of {sent}"
        time.sleep(0.05)
    assert counted == before + sent
