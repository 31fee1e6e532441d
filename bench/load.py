"""Async load generator: N concurrent senders POST /messages, then N readers GET /messages.

    python bench/load.py --base-url http://127.0.0.1:8000 --concurrency 32 --duration 20 \
        --warmup 3 --json bench/results/load.json

Each sender is its own user with its own token and a fresh Idempotency-Key per request. Only
requests that complete inside the measured window (after the warm-up) are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

# httpcore runs `import sniffio` on every request; when sniffio is absent each failed import
# walks sys.path (~15% of this client's CPU). A None entry makes that import fail at once.
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from setup import RESULTS, Setup, prepare
from stats import cpu_seconds, machine_ticks, percentile


@dataclass
class Phase:
    """What one phase measured; latencies in milliseconds."""

    name: str
    seconds: float
    ok: int = 0
    rps: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: dict[str, str] = field(default_factory=dict)
    client_cpu: float = 0.0  # this process: (user + sys) / wall; 1.0 = one core saturated
    machine_busy: float | None = None  # all cores, from /proc/stat; 1.0 = every core busy


class Recorder:
    """Collects outcomes of requests that finish inside [start, end]."""

    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.samples: dict[str, str] = {}

    def record(self, began: float, outcome: str | None, body: str = "") -> None:
        now = time.perf_counter()
        if not self.start <= now <= self.end:
            return
        if outcome is None:
            self.latencies.append((now - began) * 1000)
        else:
            self.errors[outcome] += 1
            self.samples.setdefault(outcome, body[:300])


async def worker(client: httpx.AsyncClient, recorder: Recorder, method: str, url: str,
                 token: str, body: dict[str, Any] | None, ok_status: int) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    n = 0
    while time.perf_counter() < recorder.end:
        headers = auth if body is None else {**auth, "Idempotency-Key": str(uuid.uuid4())}
        content = None if body is None else {**body, "content": f"load {n}"}
        began = time.perf_counter()
        try:
            response = await client.request(method, url, json=content, headers=headers)
        except httpx.HTTPError as exc:
            recorder.record(began, type(exc).__name__, str(exc))
            continue
        if response.status_code == ok_status:
            recorder.record(began, None)
        else:
            recorder.record(began, str(response.status_code), response.text)
        n += 1


def clients(base_url: str, concurrency: int, shared: bool) -> list[httpx.AsyncClient]:
    """One pool of `concurrency` connections, or one single-connection client per sender.

    httpcore checks every pooled connection on each request (a few syscalls each), so a shared
    pool of 32 costs the client ~O(32) per request; per-sender clients keep the same number of
    connections without that cost.
    """
    base = f"{base_url.rstrip('/')}/api/v1"
    size = concurrency if shared else 1
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    return [httpx.AsyncClient(base_url=base, limits=limits, timeout=60)
            for _ in range(1 if shared else concurrency)]


async def run_phase(name: str, setup: Setup, concurrency: int, warmup: float, duration: float,
                    method: str, ok_status: int, shared_pool: bool) -> Phase:
    pool = clients(setup.base_url, concurrency, shared_pool)
    async with contextlib.AsyncExitStack() as stack:
        for client in pool:
            await stack.enter_async_context(client)
        start = time.perf_counter() + warmup
        recorder = Recorder(start, start + duration)
        body = {"chat_id": setup.chat_id, "type": "text"} if method == "POST" else None
        url = "/messages" if body else f"/messages?chat_id={setup.chat_id}&limit=50"
        senders = [setup.users[i % len(setup.users)] for i in range(concurrency)]
        tasks = [asyncio.create_task(worker(pool[i % len(pool)], recorder, method, url,
                                            user.token, body, ok_status))
                 for i, user in enumerate(senders)]
        await asyncio.sleep(warmup)
        cpu0, wall0, ticks0 = cpu_seconds(), time.perf_counter(), machine_ticks()
        await asyncio.sleep(duration)
        cpu1, wall1, ticks1 = cpu_seconds(), time.perf_counter(), machine_ticks()
        await asyncio.gather(*tasks)
    lat = sorted(recorder.latencies)
    phase = Phase(name, duration, ok=len(lat), rps=len(lat) / duration,
                  errors=dict(recorder.errors), error_samples=recorder.samples,
                  client_cpu=(cpu1 - cpu0) / (wall1 - wall0))
    if lat:
        phase.latency_ms = {"mean": sum(lat) / len(lat), "p50": percentile(lat, 50),
                            "p90": percentile(lat, 90), "p99": percentile(lat, 99),
                            "max": lat[-1]}
    if ticks0 and ticks1 and ticks1[1] > ticks0[1]:
        phase.machine_busy = (ticks1[0] - ticks0[0]) / (ticks1[1] - ticks0[1])
    return phase


def machine() -> dict[str, Any]:
    return {"nproc": len(os.sched_getaffinity(0)), "cpu_count": os.cpu_count(),
            "loadavg": [round(v, 2) for v in os.getloadavg()],
            "python": sys.version.split()[0], "event_loop": loop_name()}


def loop_name() -> str:
    return type(asyncio.get_event_loop_policy()).__module__.split(".")[0]


def show(phase: Phase) -> None:
    lat = " ".join(f"{k}={v:.1f}" for k, v in phase.latency_ms.items())
    busy = "n/a" if phase.machine_busy is None else f"{phase.machine_busy:.0%}"
    print(f"\n{phase.name}: {phase.ok} ok in {phase.seconds:.0f}s = {phase.rps:.1f} req/s")
    print(f"  latency ms: {lat}")
    print(f"  client CPU: {phase.client_cpu:.0%} of one core; machine busy: {busy}")
    for outcome, count in sorted(phase.errors.items()):
        print(f"  error {outcome}: {count}  e.g. {phase.error_samples[outcome]!r}")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    if args.setup:
        setup = Setup.load(args.setup)
    else:
        setup = await asyncio.to_thread(prepare, args.base_url, max(args.users, 1),
                                        args.seed_messages)
        setup.save(RESULTS / "setup.json")
    print(f"chat {setup.chat_id}, {len(setup.users)} users, concurrency {args.concurrency}, "
          f"machine {machine()}")
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()},
                              "machine_before": machine(), "phases": []}
    phases = [("POST /messages", "POST", 201), ("GET /messages?limit=50", "GET", 200)]
    for name, method, ok_status in phases:
        if method == "GET" and args.read_duration <= 0:
            continue
        duration = args.duration if method == "POST" else args.read_duration
        phase = await run_phase(name, setup, args.concurrency, args.warmup, duration,
                                method, ok_status, args.shared_pool)
        show(phase)
        report["phases"].append(asdict(phase))
    report["machine_after"] = machine()
    print(f"\nloadavg after: {report['machine_after']['loadavg']}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20, help="measured POST seconds")
    parser.add_argument("--read-duration", type=float, default=None,
                        help="measured GET seconds (default: --duration; 0 skips reads)")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds per phase")
    parser.add_argument("--users", type=int, default=33, help="users to register (senders "
                        "take them round-robin)")
    parser.add_argument("--seed-messages", type=int, default=0)
    parser.add_argument("--setup", type=Path, help="reuse a setup.json instead of registering")
    parser.add_argument("--shared-pool", action="store_true", help="one AsyncClient whose pool "
                        "holds --concurrency connections (default: one client per sender)")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args()
    if args.read_duration is None:
        args.read_duration = args.duration
    with contextlib.suppress(ImportError):
        import uvloop  # type: ignore[import-not-found]

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    report = asyncio.run(main_async(args))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
        print(f"report: {args.json}")


if __name__ == "__main__":
    main()
