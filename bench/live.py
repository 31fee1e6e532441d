"""Live delivery over WebSocket: latency at a steady send rate, and fan-out to one big group.

    python bench/live.py latency --base-url http://127.0.0.1:8000 --rate 20 --duration 20
    python bench/live.py fanout --base-url http://127.0.0.1:8000 --members 500 --repeat 5

latency: one sender and two recipients, all members of one group chat; the recipients listen
on `/ws`. The sender POSTs `/messages` on a fixed schedule (open loop: a slow response does not
delay the next send), each message's content names its index. For every recipient the latency
is the time from just before the POST to the `message.created` frame arriving (one clock,
`time.perf_counter`, client and frames on this machine); also the POST latency itself, frames
lost (sent with 201 but never delivered), duplicated or out of cursor order.

fanout: N users (the owner included) in one group chat, one socket per member open at once
(the owner's too: members get their own messages), then one message is posted; the time until
the last of the N sockets has it, and p50/p99 over the sockets. Repeated K times. The client's
own CPU per round is reported: one Python process parsing N frames may itself be the limit.

Both: `--ws-base-url URL` (repeatable) opens the sockets there instead, round-robin: the
gateways of `parley up --cluster` addressed one by one, to compare one gateway with two.
`--json FILE` writes the results; `--server-match TEXT` also reports the CPU seconds of
the server's processes (every process whose command line, or an ancestor's, contains TEXT,
e.g. the `--data-dir` of `parley up`), by role. Setup (registering users: argon2, ~50 ms CPU
each) is timed and reported separately; it is never part of a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import math
import os
import resource
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

# httpcore runs `import sniffio` on every request; when sniffio is absent each failed import
# walks sys.path (a large share of this client's CPU). A None entry makes it fail at once.
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stats import cpu_seconds, machine_ticks, percentile

PASSWORD = "benchPassword123"
TIMEOUT = 30.0
# Sockets opening together make every member's presence frame go to every other member (N^2
# frames, applied one change at a time per gateway): the first marker waits for all of that.
SETTLE_TIMEOUT = 300.0

# -- statistics and CPU ----------------------------------------------------------------------


def summary(seconds: list[float]) -> dict[str, float]:
    """n, p50, p90, p99, max and mean, in milliseconds."""
    ms = sorted(v * 1000 for v in seconds)
    if not ms:
        return {"n": 0}
    out = {f"p{p}": round(percentile(ms, p), 2) for p in (50, 90, 99)}
    return {"n": len(ms), **out, "max": round(ms[-1], 2), "mean": round(sum(ms) / len(ms), 2)}


def server_cpu(match: str | None) -> dict[str, float]:
    """CPU seconds so far of the processes whose command line (or an ancestor's) has `match`,
    summed by role. Processes that ended meanwhile drop out, so compare short intervals."""
    if not match:
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    procs: dict[int, tuple[int, str, float]] = {}  # pid -> (ppid, cmdline, cpu seconds)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm_end = stat.rindex(")")
        comm = stat[stat.index("(") + 1:comm_end]
        rest = stat[comm_end + 2:].split()
        cpu = (int(rest[11]) + int(rest[12])) / tick  # utime, stime
        procs[int(entry.name)] = (int(rest[1]), f"{comm}\0{cmdline}", cpu)
    totals: dict[str, float] = {}
    for pid, (_, text, cpu) in procs.items():
        if pid == os.getpid():
            continue
        node, seen = pid, 0
        while node in procs and seen < 64:
            if match in procs[node][1]:
                totals[role(text)] = totals.get(role(text), 0.0) + cpu
                break
            node, seen = procs[node][0], seen + 1
    return dict(totals)


def role(text: str) -> str:
    comm, _, cmdline = text.partition("\0")
    if comm.startswith("postgres"):
        return "postgres"
    if comm.startswith("nats"):
        return "nats"
    if "uvicorn" in cmdline:
        return "api+gateway"
    if "projectors" in cmdline:
        return "projector"
    return comm


@dataclass
class Usage:
    """Client CPU, whole-machine busy share and server CPU by role over one interval."""

    wall: float = 0.0
    client_cpu_seconds: float = 0.0
    client_cpu: float = 0.0  # (user + sys) / wall of this process; 1.0 = one core saturated
    machine_busy: float | None = None  # all cores; 1.0 = every core busy
    server_cpu_seconds: dict[str, float] = field(default_factory=dict)
    # busy CPU seconds of the whole machine minus this client and the matched server:
    # other jobs competing for the cores (only with --server-match)
    other_cpu_seconds: float | None = None


class Meter:
    """Start on construction, `stop()` returns what happened since."""

    def __init__(self, match: str | None) -> None:
        self.match = match
        self.wall, self.cpu, self.ticks = time.perf_counter(), cpu_seconds(), machine_ticks()
        self.server = server_cpu(match)

    def stop(self) -> Usage:
        wall, cpu, busy = time.perf_counter() - self.wall, cpu_seconds() - self.cpu, None
        end = machine_ticks()
        server = server_cpu(self.match)
        spent = {k: round(v - self.server.get(k, 0.0), 2) for k, v in sorted(server.items())}
        usage = Usage(round(wall, 3), round(cpu, 3), round(cpu / wall, 3) if wall else 0.0,
                      None, {k: v for k, v in spent.items() if v > 0})
        if self.ticks and end and end[1] > self.ticks[1]:
            busy = end[0] - self.ticks[0]
            usage.machine_busy = round(busy / (end[1] - self.ticks[1]), 3)
            if self.match:
                others = busy / os.sysconf("SC_CLK_TCK") - cpu - sum(spent.values())
                usage.other_cpu_seconds = round(max(0.0, others), 2)
        return usage


def raise_fd_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE towards `wanted` (up to the hard limit); the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


# -- the API as a client sees it ------------------------------------------------------------


@dataclass
class BenchUser:
    id: int
    token: str


class Api:
    """Async calls to `/api/v1`; every write gets a fresh Idempotency-Key."""

    def __init__(self, base_url: str, ws_base_urls: list[str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        # where sockets connect, round-robin: gateways addressed directly (cluster shape)
        self.ws_base_urls = [u.rstrip("/") for u in ws_base_urls or [self.base_url]]
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        self.http = httpx.AsyncClient(base_url=f"{self.base_url}/api/v1", timeout=TIMEOUT,
                                      limits=limits)

    async def close(self) -> None:
        await self.http.aclose()

    async def post(self, path: str, body: dict[str, Any],
                   token: str | None = None) -> httpx.Response:
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return await self.http.post(path, json=body, headers=headers)

    async def checked(self, path: str, body: dict[str, Any], token: str | None = None) -> Any:
        response = await self.post(path, body, token)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    async def register(self, n: int) -> BenchUser:
        body = {"email": f"live-{uuid.uuid4().hex[:12]}-{n}@example.com", "password": PASSWORD,
                "display_name": f"Live {n}"}
        created = await self.checked("/auth/register", body)
        return BenchUser(created["user"]["id"], created["tokens"]["access_token"])

    async def register_many(self, count: int, parallel: int) -> list[BenchUser]:
        gate = asyncio.Semaphore(parallel)

        async def one(n: int) -> BenchUser:
            async with gate:
                return await self.register(n)

        return list(await asyncio.gather(*(one(n) for n in range(count))))

    async def group(self, owner: BenchUser, members: list[BenchUser]) -> int:
        """A group of all of them: created with the first 500, the rest added 500 at a time
        (the API's bound per request)."""
        ids = [m.id for m in members]
        chat = await self.checked("/chats", {"title": "live bench", "is_group": True,
                                             "member_ids": ids[:500]}, owner.token)
        for start in range(500, len(ids), 500):
            await self.checked(f"/chats/{chat['id']}/members",
                               {"user_ids": ids[start:start + 500]}, owner.token)
        return int(chat["id"])

    async def say(self, author: BenchUser, chat_id: int, content: str) -> httpx.Response:
        return await self.post("/messages", {"chat_id": chat_id, "type": "text",
                                             "content": content}, author.token)

    def ws_url(self, user: BenchUser, slot: int = 0) -> str:
        base = self.ws_base_urls[slot % len(self.ws_base_urls)]
        return f"ws{base.removeprefix('http')}/ws?token={user.token}"


# -- sockets ---------------------------------------------------------------------------------

OnMessage = Callable[[str, float, dict[str, Any]], None]


class Listener:
    """One open `/ws` session: calls `on_message(content, arrived, frame)` for every
    `message.created`, counts other events and cursor regressions, keeps the close code."""

    def __init__(self, ws: ClientConnection, name: str, on_message: OnMessage) -> None:
        self.ws = ws
        self.name = name
        self.on_message = on_message
        self.events: Counter[str] = Counter()
        self.cursor_regressions = 0
        self.close_code: int | None = None
        self._last_cursor = -1
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for raw in self.ws:
                arrived = time.perf_counter()
                frame = json.loads(raw)
                event = frame.get("event", "?")
                self.events[event] += 1
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    cursor = int(frame["cursor"])  # live frames (typing, presence) have none
                    if cursor <= self._last_cursor:
                        self.cursor_regressions += 1
                    self._last_cursor = cursor
                if event == "message.created":
                    self.on_message(str(frame["data"].get("content")), arrived, frame)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.task, 5)


async def open_socket(api: Api, user: BenchUser, compression: str | None,
                      slot: int = 0) -> ClientConnection:
    """Connect (to gateway `slot` of `--ws-base-url`, round-robin) and wait for the pong to a
    ping: the session is live when it returns."""
    ws = await connect(api.ws_url(user, slot), compression=compression, open_timeout=TIMEOUT,
                       ping_interval=None, max_size=2**20)
    await ws.send(json.dumps({"type": "ping"}))
    async with asyncio.timeout(TIMEOUT):
        while json.loads(await ws.recv()).get("event") != "pong":
            pass
    return ws


class Waiter:
    """Counts arrivals of one content across listeners; `wait()` until `expected` saw it."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.arrivals: dict[str, float] = {}  # listener name -> first arrival
        self.done = asyncio.Event()

    def arrived(self, listener: str, at: float) -> None:
        self.arrivals.setdefault(listener, at)
        if len(self.arrivals) >= self.expected:
            self.done.set()

    async def wait(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done.wait(), timeout)
        return self.done.is_set()


async def synced(api: Api, author: BenchUser, chat_id: int, waiters: dict[str, Waiter],
                 expected: int) -> float:
    """Post a marker and wait until every socket has it: delivery is flowing end to end and
    setup events (presence of every arrival included) are behind us. Seconds it took."""
    marker = f"sync {uuid.uuid4()}"
    waiters[marker] = waiter = Waiter(expected)
    started = time.perf_counter()
    response = await api.say(author, chat_id, marker)
    if response.status_code != 201:
        raise RuntimeError(f"marker: {response.status_code} {response.text[:300]}")
    if not await waiter.wait(SETTLE_TIMEOUT):
        raise RuntimeError(f"marker reached {len(waiter.arrivals)} of {expected} sockets")
    del waiters[marker]
    return time.perf_counter() - started


# -- latency ---------------------------------------------------------------------------------


@dataclass
class Recipient:
    name: str
    received: int = 0
    lost: int = 0
    lost_message_ids: list[int] = field(default_factory=list)  # the first 20
    duplicates: int = 0
    cursor_regressions: int = 0
    before_response: int = 0  # frames that arrived before the sender's POST returned
    latency_ms: dict[str, float] = field(default_factory=dict)
    close_code: int | None = None


@dataclass
class LatencyResult:
    base_url: str
    rate: float
    duration: float
    warmup: float
    compression: str
    setup_seconds: float
    sent: int = 0
    post_ok: int = 0
    post_errors: dict[str, int] = field(default_factory=dict)
    post_ms: dict[str, float] = field(default_factory=dict)
    schedule_lag_ms: dict[str, float] = field(default_factory=dict)  # sender late vs schedule
    achieved_rate: float = 0.0
    overall_ms: dict[str, float] = field(default_factory=dict)
    frame_after_response_ms: dict[str, float] = field(default_factory=dict)
    lost: int = 0
    # GET /messages/{id} of each lost message (up to 50), by status: 404 means the message is
    # missing from the read model too, i.e. not a delivery problem but a projection one
    lost_rest_status: dict[str, int] = field(default_factory=dict)
    recipients: list[Recipient] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)


async def latency(args: argparse.Namespace) -> LatencyResult:
    api = Api(args.base_url, args.ws_base_url)
    compression = None if args.compression == "none" else args.compression
    listeners: list[Listener] = []
    try:
        started = time.perf_counter()
        sender, *recipients = await api.register_many(1 + args.recipients, 4)
        chat = await api.group(sender, recipients)
        run = uuid.uuid4().hex[:8]
        prefix = f"live {run} "
        # arrivals[recipient][index] -> first arrival; duplicates counted aside
        arrivals: list[dict[int, float]] = [{} for _ in recipients]
        dupes = [0 for _ in recipients]
        waiters: dict[str, Waiter] = {}
        expected: set[int] = set()  # set once every POST returned: the indexes that got 201
        drained = asyncio.Event()

        def check_drained() -> None:
            if all(expected <= got.keys() for got in arrivals):
                drained.set()

        def on_message(slot: int) -> OnMessage:
            name = f"recipient-{slot + 1}"

            def handle(content: str, at: float, frame: dict[str, Any]) -> None:
                if content.startswith(prefix):
                    index = int(content[len(prefix):])
                    if index in arrivals[slot]:
                        dupes[slot] += 1
                    else:
                        arrivals[slot][index] = at
                    if expected and not drained.is_set():
                        check_drained()
                elif content in waiters:
                    waiters[content].arrived(name, at)

            return handle

        for slot, user in enumerate(recipients):
            ws = await open_socket(api, user, compression, slot=slot)
            listeners.append(Listener(ws, f"recipient-{slot + 1}", on_message(slot)))
        await synced(api, sender, chat, waiters, len(listeners))
        result = LatencyResult(args.base_url, args.rate, args.duration, args.warmup,
                               args.compression, round(time.perf_counter() - started, 2))

        warm = round(args.rate * args.warmup)
        total = warm + round(args.rate * args.duration)
        send_at: dict[int, float] = {}
        response_at: dict[int, float] = {}
        message_ids: dict[int, int] = {}
        errors: Counter[str] = Counter()
        lag: list[float] = []

        async def one(index: int) -> None:
            send_at[index] = time.perf_counter()
            try:
                response = await api.say(sender, chat, f"{prefix}{index}")
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1
                return
            if response.status_code == 201:
                response_at[index] = time.perf_counter()
                message_ids[index] = int(response.json()["id"])
            else:
                errors[str(response.status_code)] += 1

        meter = Meter(args.server_match)
        tasks: list[asyncio.Task[None]] = []
        begin = time.perf_counter() + 0.05
        for index in range(total):
            due = begin + index / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if index >= warm:
                lag.append(max(0.0, time.perf_counter() - due))
            tasks.append(asyncio.create_task(one(index)))
        await asyncio.gather(*tasks)
        first, last = min(send_at.values()), max(send_at.values())
        # Every frame of a 201 should come; wait for the stragglers, bounded.
        expected.update(response_at)
        check_drained()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(drained.wait(), args.drain)
        result.usage = meter.stop()

        measured = list(range(warm, total))
        result.sent = len(measured)
        result.post_ok = sum(1 for i in measured if i in response_at)
        result.post_errors = dict(errors)
        result.post_ms = summary([response_at[i] - send_at[i] for i in measured
                                  if i in response_at])
        result.schedule_lag_ms = summary(lag)
        result.achieved_rate = round((total - 1) / (last - first), 2) if last > first else 0.0
        overall: list[float] = []
        after_response: list[float] = []
        for slot, listener in enumerate(listeners):
            got = arrivals[slot]
            delays = [got[i] - send_at[i] for i in measured if i in got]
            overall += delays
            after_response += [got[i] - response_at[i] for i in measured
                               if i in got and i in response_at]
            missed = sorted(message_ids[i] for i in response_at if i not in got)  # warm-up too
            lost = len(missed)
            result.recipients.append(Recipient(
                listener.name, received=len(got), lost=lost, lost_message_ids=missed[:20],
                duplicates=dupes[slot],
                cursor_regressions=listener.cursor_regressions,
                before_response=sum(1 for i in measured
                                    if i in got and i in response_at and got[i] < response_at[i]),
                latency_ms=summary(delays), close_code=listener.close_code))
            result.lost += lost
        missing = sorted({message_ids[i] for i in response_at
                          if any(i not in got for got in arrivals)})
        for message_id in missing[:50]:
            status = (await api.http.get(f"/messages/{message_id}", headers={
                "Authorization": f"Bearer {sender.token}"})).status_code
            result.lost_rest_status[str(status)] = result.lost_rest_status.get(str(status), 0) + 1
        result.overall_ms = summary(overall)
        # negative values are frames that beat the HTTP response; summary() sorts them too
        result.frame_after_response_ms = summary(after_response)
        return result
    finally:
        for listener in listeners:
            await listener.close()
        await api.close()


# -- fan-out ---------------------------------------------------------------------------------


@dataclass
class Round:
    index: int
    post_ms: float
    delivered: int
    missing: int
    first_ms: float
    p50_ms: float
    p99_ms: float
    last_ms: float  # POST start to the last socket having the frame
    usage: Usage


@dataclass
class FanoutResult:
    base_url: str
    members: int
    compression: str
    register_seconds: float
    chat_seconds: float
    open_seconds: float
    connect_ms: dict[str, float]
    sync_seconds: float
    fd_limit: int
    rounds: list[Round] = field(default_factory=list)
    closes: dict[str, int] = field(default_factory=dict)
    last_ms: dict[str, float] = field(default_factory=dict)  # over rounds


async def fanout(args: argparse.Namespace) -> FanoutResult:
    fd_limit = raise_fd_limit(args.members * 2 + 256)
    api = Api(args.base_url, args.ws_base_url)
    compression = None if args.compression == "none" else args.compression
    listeners: list[Listener] = []
    try:
        started = time.perf_counter()
        users = await api.register_many(args.members, args.parallel)
        registered = time.perf_counter()
        owner = users[0]
        chat = await api.group(owner, users[1:])
        chat_done = time.perf_counter()
        print(f"setup: {len(users)} users in {registered - started:.1f} s, "
              f"chat in {chat_done - registered:.1f} s", file=sys.stderr, flush=True)
        waiters: dict[str, Waiter] = {}

        def on_message(name: str) -> OnMessage:
            def handle(content: str, at: float, frame: dict[str, Any]) -> None:
                waiter = waiters.get(content)
                if waiter is not None:
                    waiter.arrived(name, at)
            return handle

        gate = asyncio.Semaphore(args.open_parallel)
        connect_times: list[float] = []

        async def open_one(n: int, user: BenchUser) -> Listener:
            async with gate:
                t = time.perf_counter()
                ws = await open_socket(api, user, compression, slot=n)
                connect_times.append(time.perf_counter() - t)
                return Listener(ws, f"member-{n}", on_message(f"member-{n}"))

        opening = time.perf_counter()
        listeners += await asyncio.gather(*(open_one(n, u) for n, u in enumerate(users)))
        opened = time.perf_counter()
        try:
            sync = await synced(api, owner, chat, waiters, len(listeners))
        except RuntimeError as exc:
            closes = Counter(str(listener.close_code) for listener in listeners
                             if listener.task.done())
            raise RuntimeError(f"{exc}; sockets closed meanwhile, by code: {dict(closes)}") \
                from None
        result = FanoutResult(args.base_url, args.members, args.compression,
                              round(registered - started, 2), round(chat_done - registered, 2),
                              round(opened - opening, 2), summary(connect_times),
                              round(sync, 3), fd_limit)
        print(f"setup: {len(listeners)} sockets open in {opened - opening:.1f} s, "
              f"marker delivered to all in {sync:.2f} s", file=sys.stderr, flush=True)

        for k in range(args.repeat):
            await asyncio.sleep(args.pause)
            content = f"fanout {uuid.uuid4().hex[:8]} {k}"
            waiters[content] = waiter = Waiter(len(listeners))
            meter = Meter(args.server_match)
            t0 = time.perf_counter()
            response = await api.say(owner, chat, content)
            post = time.perf_counter() - t0
            if response.status_code != 201:
                raise RuntimeError(f"round {k}: {response.status_code} {response.text[:300]}")
            await waiter.wait(TIMEOUT)
            usage = meter.stop()
            del waiters[content]
            times = sorted((at - t0) * 1000 for at in waiter.arrivals.values())
            rnd = Round(k + 1, round(post * 1000, 2), len(times), len(listeners) - len(times),
                        round(times[0], 2) if times else math.nan,
                        round(percentile(times, 50), 2), round(percentile(times, 99), 2),
                        round(times[-1], 2) if times else math.nan, usage)
            result.rounds.append(rnd)
            print(f"round {rnd.index}: post {rnd.post_ms:.0f} ms, first {rnd.first_ms:.0f}, "
                  f"p50 {rnd.p50_ms:.0f}, p99 {rnd.p99_ms:.0f}, last {rnd.last_ms:.0f} ms, "
                  f"missing {rnd.missing}, client cpu {usage.client_cpu_seconds:.2f} s "
                  f"over {usage.wall:.2f} s", file=sys.stderr, flush=True)
        result.last_ms = summary([r.last_ms / 1000 for r in result.rounds])
        result.closes = dict(Counter(str(listener.close_code) for listener in listeners
                                     if listener.task.done()))  # ended before we closed them
        return result
    finally:
        await asyncio.gather(*(listener.close() for listener in listeners))
        await api.close()


# -- CLI -------------------------------------------------------------------------------------


def report_latency(r: LatencyResult) -> None:
    def line(label: str, s: dict[str, float]) -> str:
        return (f"  {label:<14} n={s.get('n', 0):<5} p50 {s.get('p50', math.nan):8.1f}  "
                f"p90 {s.get('p90', math.nan):8.1f}  p99 {s.get('p99', math.nan):8.1f}  "
                f"max {s.get('max', math.nan):8.1f} ms")

    print(f"latency: {r.rate:g}/s for {r.duration:g} s (achieved {r.achieved_rate:g}/s), "
          f"{r.sent} sent, {r.post_ok} x 201, errors {r.post_errors or 'none'}, "
          f"setup {r.setup_seconds} s")
    print(line("POST", r.post_ms))
    for rec in r.recipients:
        print(line(rec.name, rec.latency_ms) + f"  lost {rec.lost} dup {rec.duplicates} "
              f"order {rec.cursor_regressions} before-response {rec.before_response}")
        if rec.lost_message_ids:
            print(f"    lost message ids: {rec.lost_message_ids}")
    print(line("overall", r.overall_ms) + f"  lost {r.lost}")
    if r.lost_rest_status:
        print(f"  lost messages read back over REST, by status: {r.lost_rest_status}")
    print(line("frame-response", r.frame_after_response_ms))
    print(line("sender lag", r.schedule_lag_ms))
    u = r.usage
    print(f"  over {u.wall:.1f} s: client cpu {u.client_cpu:.2f} of a core, machine busy "
          f"{u.machine_busy}, server cpu s {u.server_cpu_seconds}, other jobs cpu s "
          f"{u.other_cpu_seconds}")


def report_fanout(r: FanoutResult) -> None:
    print(f"fanout: {r.members} members/sockets; register {r.register_seconds} s, chat "
          f"{r.chat_seconds} s, open {r.open_seconds} s (connect p50 "
          f"{r.connect_ms.get('p50')} p99 {r.connect_ms.get('p99')} ms), marker {r.sync_seconds}"
          f" s")
    for rnd in r.rounds:
        u = rnd.usage
        print(f"  round {rnd.index}: POST {rnd.post_ms:7.1f}  first {rnd.first_ms:7.1f}  "
              f"p50 {rnd.p50_ms:7.1f}  p99 {rnd.p99_ms:7.1f}  last {rnd.last_ms:7.1f} ms  "
              f"missing {rnd.missing}  client cpu {u.client_cpu_seconds:.2f} s/{u.wall:.2f} s "
              f"machine {u.machine_busy} others {u.other_cpu_seconds} s")
    print(f"  last-recipient over rounds: {r.last_ms}; early closes: {r.closes or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base-url", default="http://127.0.0.1:8000")
    common.add_argument("--ws-base-url", action="append", metavar="URL",
                        help="open sockets here instead (repeat: spread round-robin over "
                             "several gateways)")
    common.add_argument("--json", type=Path, help="write the results here")
    common.add_argument("--compression", choices=("deflate", "none"), default="deflate",
                        help="permessage-deflate offered by the client (browsers do)")
    common.add_argument("--server-match", help="report CPU of server processes whose command "
                        "line (or an ancestor's) contains this, e.g. the data dir")
    sub = parser.add_subparsers(dest="command", required=True)
    lat = sub.add_parser("latency", parents=[common], help="delivery latency at a send rate")
    lat.add_argument("--rate", type=float, default=20.0, help="messages per second")
    lat.add_argument("--duration", type=float, default=20.0, help="seconds measured")
    lat.add_argument("--warmup", type=float, default=0.0, help="seconds sent, not measured")
    lat.add_argument("--recipients", type=int, default=2)
    lat.add_argument("--drain", type=float, default=15.0,
                     help="seconds to wait for late frames after the last POST returned")
    fan = sub.add_parser("fanout", parents=[common], help="one message to N live members")
    fan.add_argument("--members", type=int, default=500)
    fan.add_argument("--repeat", type=int, default=5)
    fan.add_argument("--pause", type=float, default=1.0, help="seconds between rounds")
    fan.add_argument("--parallel", type=int, default=8, help="concurrent registrations")
    fan.add_argument("--open-parallel", type=int, default=50, help="concurrent handshakes")
    args = parser.parse_args()

    result: LatencyResult | FanoutResult
    if args.command == "latency":
        result = asyncio.run(latency(args))
        report_latency(result)
    else:
        result = asyncio.run(fanout(args))
        report_fanout(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": args.command, **asdict(result)}, indent=2))


if __name__ == "__main__":
    main()
