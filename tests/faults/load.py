"""The fault suites' clients: a writer posting into a chat and a reader following it over
/ws while a fault is injected, and the checks afterwards (`survive`): every acknowledged post
stored exactly once, delivered exactly once and in order, no answer a 500, the system recovered.

Clients behave as the contract asks: a post is retried with its own Idempotency-Key until it
gets 201 or 409 (whatever else came back: 503, 429, a dropped connection); the reader
reconnects with its last cursor whenever its socket closes. With `check_reads`, each
acknowledged post is also read back with `X-Min-Position` set to its `X-Event-Position`, as a
client that wants to see its own write does: such a read must never miss it (the cluster
suite, where reads go to a replica).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import psutil
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from parley.stack import Stack
from tests.e2e.client import Api, User

T = TypeVar("T")
POST_PAUSE = 0.05  # between a writer's posts: ~15-20 posts/s on this machine
BEFORE, AFTER = 2.0, 4.0  # seconds of load before the fault, and after writes work again
RECOVERY_DEADLINE = 90.0  # a loaded CI machine; the README gives the measured figures
DELIVERY_DEADLINE = 60.0


@dataclass
class Run:
    """What the clients saw."""

    acked: dict[str, int] = field(default_factory=dict)  # text -> message id
    statuses: Counter[int | str] = field(default_factory=Counter)
    delivered: list[int] = field(default_factory=list)
    closes: Counter[int | str] = field(default_factory=Counter)
    sockets: list[str] = field(default_factory=list)  # each socket: its cursor, what it got
    first_201_after: dict[str, float] = field(default_factory=dict)
    stale_reads: list[str] = field(default_factory=list)  # with check_reads: what was missed


class Load:
    """One writer posting into a chat, one reader following it over /ws."""

    def __init__(self, stack: Stack, writer: User, reader: User, chat: int,
                 check_reads: bool = False) -> None:
        self.stack, self.writer, self.reader, self.chat = stack, writer, reader, chat
        self.check_reads = check_reads
        self.run = Run()
        self.stop_writing = asyncio.Event()
        self.stop_reading = asyncio.Event()
        self.markers: set[str] = set()  # markers seen: the reader holds a cursor
        self.fault_at: float | None = None

    async def write(self) -> None:
        base = f"{self.stack.base_url}/api/v1"
        headers = {"Authorization": f"Bearer {self.writer.token}"}
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            n = 0
            while not self.stop_writing.is_set():
                text, key = f"post {n} {uuid.uuid4().hex[:6]}", str(uuid.uuid4())
                while True:
                    try:
                        response = await client.post(
                            "/messages", json={"chat_id": self.chat, "type": "text",
                                               "content": text},
                            headers={**headers, "Idempotency-Key": key})
                    except httpx.HTTPError as exc:
                        self.run.statuses[type(exc).__name__] += 1
                        await asyncio.sleep(0.2)
                        continue
                    self.run.statuses[response.status_code] += 1
                    if response.status_code == 201:
                        self.run.acked[text] = response.json()["id"]
                        if self.check_reads:
                            await self.read_own_write(client, response)
                        if self.fault_at and "write" not in self.run.first_201_after:
                            self.run.first_201_after["write"] = time.monotonic() - self.fault_at
                        break
                    if response.status_code == 409:  # the first try did it; its answer was lost
                        location = response.headers["Location"]
                        self.run.acked[text] = int(location.rsplit("/", 1)[1])
                        break
                    await asyncio.sleep(0.2)  # 503 + Retry-After (or 429): the same key again
                n += 1
                await asyncio.sleep(POST_PAUSE)

    async def read_own_write(self, client: httpx.AsyncClient, created: httpx.Response) -> None:
        """GET the new message with X-Min-Position = its position (503s and dropped
        connections tried again): anything but the message itself is a stale read."""
        message_id = created.json()["id"]
        headers = {"Authorization": f"Bearer {self.writer.token}",
                   "X-Min-Position": created.headers["X-Event-Position"]}
        deadline = time.monotonic() + RECOVERY_DEADLINE
        while time.monotonic() < deadline:
            try:
                response = await client.get(f"/messages/{message_id}", headers=headers)
            except httpx.HTTPError:
                await asyncio.sleep(0.2)
                continue
            if response.status_code == 503:
                await asyncio.sleep(0.2)
                continue
            if response.status_code != 200 or response.json()["id"] != message_id:
                self.run.stale_reads.append(f"{message_id}: {response.status_code}"
                                            f" {response.text[:120]}")
            return
        self.run.stale_reads.append(f"{message_id}: no answer but 503 for {RECOVERY_DEADLINE} s")

    async def read(self) -> None:
        ws_base = f"ws{self.stack.base_url.removeprefix('http')}/ws?token={self.reader.token}"
        cursor: str | None = None
        while not self.stop_reading.is_set():
            url = ws_base + (f"&cursor={cursor}" if cursor else "")
            self.run.sockets.append(f"cursor={cursor} from={len(self.run.delivered)}")
            try:
                async with connect(url, open_timeout=10) as ws:
                    while not self.stop_reading.is_set():
                        try:
                            text = await asyncio.wait_for(ws.recv(), 0.5)
                        except TimeoutError:
                            continue
                        frame = json.loads(text)
                        cursor = frame.get("cursor") or cursor
                        data = frame.get("data") or {}
                        if frame["event"] == "message.created" and data.get("type") == "text":
                            if data["content"].startswith("marker"):
                                self.markers.add(data["content"])
                            else:
                                self.run.delivered.append(data["id"])
            except (WebSocketException, OSError, TimeoutError) as exc:
                code = getattr(getattr(exc, "rcvd", None), "code", None)
                self.run.closes[code or type(exc).__name__] += 1
                await asyncio.sleep(0.2)

    async def holds_a_cursor(self) -> None:
        """As a client must before it relies on resuming: a socket that closes before its
        first frame leaves nothing to resume from. Markers until one arrives."""
        deadline = time.monotonic() + RECOVERY_DEADLINE
        while not self.markers:
            assert time.monotonic() < deadline, "the reader never received a frame"
            marker = f"marker {uuid.uuid4().hex[:6]}"
            await asyncio.to_thread(patiently, self.writer.say, self.chat, marker)
            for _ in range(25):
                if self.markers:
                    return
                await asyncio.sleep(0.2)

    async def delivered_all(self) -> None:
        deadline = time.monotonic() + DELIVERY_DEADLINE
        while not set(self.run.acked.values()) <= set(self.run.delivered):
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.2)


def process(stack: Stack, name: str) -> psutil.Process:
    """A supervised child of the stack (`postgres`, `nats`, `s3`, `projector`, `api`)."""
    return psutil.Process(stack.processes[name].pid)

def ready(stack: Stack) -> bool:
    """Every HTTP process of the stack is ready (a cluster's router has no /readyz: it
    routes the public API alone)."""
    urls = [url for name, url in stack.listeners.items() if name != "router"]
    try:
        return all(httpx.get(f"{url}/readyz", timeout=5).status_code == 200 for url in urls)
    except httpx.HTTPError:
        return False


def wait_ready(stack: Stack, since: float) -> float:
    while not ready(stack):
        assert time.monotonic() - since < RECOVERY_DEADLINE, "the system did not recover"
        time.sleep(0.2)
    return time.monotonic() - since


def patiently(make: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Set-up as a client does it: a 503 (a pooled connection a previous fault left dead) is
    tried again. The set-up makes fresh users, so a retry cannot duplicate anything."""
    deadline = time.monotonic() + RECOVERY_DEADLINE
    while True:
        try:
            return make(*args, **kwargs)
        except AssertionError as exc:
            if "unavailable" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def all_messages(api: Api, user: User, chat: int) -> list[dict[str, Any]]:
    """Every message of the chat, paging back from the newest."""
    messages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"chat_id": chat, "limit": 100}
    while True:
        response = api.get("/messages", token=user.token, params=params)
        if response.status_code == 503:  # a pooled connection a fault left dead
            time.sleep(0.2)
            continue
        assert response.status_code == 200, response.text
        if not (page := response.json()):
            return messages
        messages += page
        params["before_id"] = page[-1]["id"]


def survive(stack: Stack, name: str, inject: Callable[[Stack], None],
            check_reads: bool = False) -> Run:
    wait_ready(stack, time.monotonic())
    api = Api(stack.base_url)
    writer, reader = patiently(User, api, "Writer"), patiently(User, api, "Reader")
    chat = patiently(writer.group, reader, title=name)["id"]
    load = Load(stack, writer, reader, chat, check_reads)

    async def scenario() -> float:
        reader_task = asyncio.create_task(load.read())
        await load.holds_a_cursor()
        tasks = [reader_task, asyncio.create_task(load.write())]
        await asyncio.sleep(BEFORE)
        load.fault_at = time.monotonic()
        await asyncio.to_thread(inject, stack)
        since = time.monotonic()  # a freeze ends when it is lifted
        recovered = await asyncio.to_thread(wait_ready, stack, since)
        while "write" not in load.run.first_201_after:
            assert time.monotonic() - since < RECOVERY_DEADLINE, "writes never worked again"
            await asyncio.sleep(0.2)
        await asyncio.sleep(AFTER)
        load.stop_writing.set()
        await tasks[1]
        await load.delivered_all()
        load.stop_reading.set()
        await tasks[0]
        return recovered

    recovered = asyncio.run(scenario())
    run = load.run
    print(f"\n{name}: ready again {recovered:.1f} s after the fault, first post acknowledged"
          f" {run.first_201_after['write']:.1f} s after it began; {len(run.acked)} posts, statuses"
          f" {dict(run.statuses)}, socket closes {dict(run.closes)}")

    assert not [s for s in run.statuses if isinstance(s, int) and s >= 500 and s != 503]
    assert not run.stale_reads, f"reads with X-Min-Position missed their write: {run.stale_reads}"
    stored = all_messages(Api(stack.base_url), reader, chat)
    texts = [m["content"] for m in stored
             if m["type"] == "text" and not m["content"].startswith("marker")]
    assert sorted(texts) == sorted(run.acked), "every acknowledged post stored exactly once"
    assert sorted(m["id"] for m in stored if m["content"] in run.acked) == \
        sorted(run.acked.values())
    assert run.delivered == sorted(run.acked.values()), \
        f"delivered exactly once, in order; sockets: {run.sockets}"
    return run
