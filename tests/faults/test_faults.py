"""The fault suite: while posts keep coming and a WebSocket reader follows them, one process
or server is killed (or frozen); afterwards every acknowledged post is stored exactly once,
was delivered exactly once and in order, no answer was a 500, and the system recovered.

Clients behave as the contract asks: a post is retried with its own Idempotency-Key until it
gets 201 or 409 (whatever else came back: 503, 429, a dropped connection); the reader
reconnects with its last cursor whenever its socket closes. Each fault's recovery times are
printed (`-s` shows them) and recorded in the README.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import nats
import psutil
import psycopg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from gateway.protocol import CLOSE_TRY_AGAIN
from parley.embedded.processes import spawn_child
from parley.stack import Stack
from shared.settings import Settings, parse_database_url
from tests.databases import database_url_for
from tests.e2e.client import Api, User
from tests.e2e.sockets import Socket, opened, run, synced

T = TypeVar("T")
POST_PAUSE = 0.05  # between a writer's posts: ~15-20 posts/s on this machine
BEFORE, AFTER = 2.0, 4.0  # seconds of load before the fault, and after writes work again
RECOVERY_DEADLINE = 90.0  # a loaded CI machine; the README gives the measured figures
DELIVERY_DEADLINE = 60.0
NATS_DOWN = 10.0  # seconds a killed NATS cluster member stays down


@dataclass
class Run:
    """What the clients saw."""

    acked: dict[str, int] = field(default_factory=dict)  # text -> message id
    statuses: Counter[int | str] = field(default_factory=Counter)
    delivered: list[int] = field(default_factory=list)
    closes: Counter[int | str] = field(default_factory=Counter)
    sockets: list[str] = field(default_factory=list)  # each socket: its cursor, what it got
    first_201_after: dict[str, float] = field(default_factory=dict)


class Load:
    """One writer posting into a chat, one reader following it over /ws."""

    def __init__(self, stack: Stack, writer: User, reader: User, chat: int) -> None:
        self.stack, self.writer, self.reader, self.chat = stack, writer, reader, chat
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


def kill_a_postgres_backend(stack: Stack) -> None:
    """Crash recovery: PostgreSQL resets every connection, as after an OOM kill."""
    with psycopg.connect(stack.env["DATABASE_URL"], autocommit=True) as conn:
        pid = conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type ="
                           " 'client backend' AND pid <> pg_backend_pid() LIMIT 1").fetchone()
    assert pid is not None
    subprocess.run(["kill", "-9", str(pid[0])], check=True)


def kill_the_postmaster(stack: Stack) -> None:
    process(stack, "postgres").kill()


def kill_the_projector(stack: Stack) -> None:
    stack.processes["projector"].send_signal(signal.SIGKILL)


def kill_an_api_worker(stack: Stack) -> None:
    workers = process(stack, "api").children()
    assert workers, "no uvicorn worker to kill"
    workers[0].kill()


def kill_nats(stack: Stack) -> None:
    process(stack, "nats").kill()


def freeze_nats_for_30s(stack: Stack) -> None:
    server = process(stack, "nats")
    server.suspend()
    try:
        time.sleep(30)
    finally:
        server.resume()


FAULTS: dict[str, Callable[[Stack], None]] = {
    "kill -9 a PostgreSQL backend": kill_a_postgres_backend,
    "kill -9 the PostgreSQL postmaster": kill_the_postmaster,
    "kill -9 the projector": kill_the_projector,
    "kill -9 an API worker": kill_an_api_worker,
    "kill -9 the NATS server": kill_nats,
    "SIGSTOP NATS for 30 s": freeze_nats_for_30s,
}


def ready(stack: Stack) -> bool:
    try:
        return httpx.get(f"{stack.base_url}/readyz", timeout=5).status_code == 200
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


def survive(stack: Stack, name: str, inject: Callable[[Stack], None]) -> Run:
    wait_ready(stack, time.monotonic())
    api = Api(stack.base_url)
    writer, reader = patiently(User, api, "Writer"), patiently(User, api, "Reader")
    chat = patiently(writer.group, reader, title=name)["id"]
    load = Load(stack, writer, reader, chat)

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
    stored = all_messages(Api(stack.base_url), reader, chat)
    texts = [m["content"] for m in stored
             if m["type"] == "text" and not m["content"].startswith("marker")]
    assert sorted(texts) == sorted(run.acked), "every acknowledged post stored exactly once"
    assert sorted(m["id"] for m in stored if m["content"] in run.acked) == \
        sorted(run.acked.values())
    assert run.delivered == sorted(run.acked.values()), \
        f"delivered exactly once, in order; sockets: {run.sockets}"
    return run


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_fault_loses_nothing(faulty: Stack, name: str) -> None:
    survive(faulty, name, FAULTS[name])


def test_kill_9_of_the_active_projector_with_a_standby_running(
        faulty: Stack, tmp_path: Path) -> None:
    log = tmp_path / "standby.log"
    standby = spawn_child([sys.executable, "-m", "projectors"], log, env=faulty.env)
    deadline = time.monotonic() + 60
    while "standing by" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the standby never started"
        time.sleep(0.1)
    try:
        survive(faulty, "kill -9 the active projector, a standby running", kill_the_projector)
        assert "this projector is active" in log.read_text()
    finally:
        standby.terminate()
        standby.wait(30)


def test_every_connection_cut_costs_each_pool_one_failed_request_at_most(faulty: Stack) -> None:
    """After PostgreSQL dropped every connection (a restart, a failover, an operator's
    pg_terminate_backend), a pool whose first request failed tests its idle connections, so
    the next requests do not fail one by one on the other dead ones."""
    wait_ready(faulty, time.monotonic())
    api = Api(faulty.base_url)
    ann = patiently(User, api, "Ann")
    chat = patiently(ann.group, title="cut")["id"]

    def post(i: int) -> int:
        return ann.post("/messages", {"chat_id": chat, "type": "text", "content": f"{i}"}
                        ).status_code

    def read(i: int) -> int:
        return ann.get("/messages", chat_id=chat).status_code

    with ThreadPoolExecutor(16) as pool:  # every pool of both workers holds idle connections
        assert set(pool.map(post, range(64))) | set(pool.map(read, range(64))) == {200, 201}
    with psycopg.connect(faulty.env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type"
                     " = 'client backend' AND pid <> pg_backend_pid()")
    answers = [(post(i), read(i)) for i in range(60)]
    failed_posts = sum(p == 503 for p, _ in answers)
    failed_reads = sum(r == 503 for _, r in answers)
    assert {p for p, _ in answers} <= {201, 503} and {r for _, r in answers} <= {200, 503}
    # two workers, each with an event-store pool and a pool of its own per API
    assert failed_posts <= 4 and failed_reads <= 2, answers


async def close_of(stack: Stack, user: User) -> tuple[int, str]:
    """The code and reason the user's socket is closed with; only the user's own frames may
    come before."""
    url = f"ws{stack.base_url.removeprefix('http')}/ws?token={user.token}"
    async with connect(url, open_timeout=30) as ws:
        try:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                assert frame["event"] == "user.registered" and frame["data"]["id"] == user.id
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, closed
            return closed.rcvd.code, closed.rcvd.reason


def test_a_database_refusing_connections_is_503_and_the_retried_write_has_one_effect(
        faulty: Stack) -> None:
    """PostgreSQL down or out of connections, made exact: the database stops accepting
    connections and the API's are cut. A write answers 503 with `Retry-After: 1` and a detail,
    `/readyz` 503; once it is back, the same Idempotency-Key is tried again and there is
    exactly one message. A socket opened meanwhile is closed 1013 (come back), not 1011."""
    wait_ready(faulty, time.monotonic())
    api = Api(faulty.base_url)
    ann = patiently(User, api, "Ann")
    chat = patiently(ann.group, title="refusing")["id"]
    url = faulty.env["DATABASE_URL"]
    database = parse_database_url(url).dbname
    body = {"chat_id": chat, "type": "text", "content": f"once {uuid.uuid4()}"}
    key = str(uuid.uuid4())
    with psycopg.connect(database_url_for(url, "postgres"), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        try:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = %s AND pid <> pg_backend_pid()", (database,))
            refused = ann.post("/messages", body, key=key)
            readyz = httpx.get(f"{faulty.base_url}/readyz", timeout=30)
            ws_closed = asyncio.run(asyncio.wait_for(close_of(faulty, ann), 60))
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "1" and refused.json()["detail"]
    assert readyz.status_code == 503, readyz.text
    assert ws_closed == (CLOSE_TRY_AGAIN, "server busy, resume with cursor")  # not 1011
    deadline = time.monotonic() + RECOVERY_DEADLINE
    while (retried := ann.post("/messages", body, key=key)).status_code == 503:
        assert time.monotonic() < deadline, retried.text
        time.sleep(0.2)
    assert retried.status_code == 201, retried.text
    again = ann.post("/messages", body, key=key)
    assert again.status_code == 409 and again.json()["original_status"] == 201, again.text
    stored = [m for m in all_messages(api, ann, chat) if m["content"] == body["content"]]
    assert [m["id"] for m in stored] == [retried.json()["id"]]
    wait_ready(faulty, time.monotonic())


def kill_the_nats_stream_leader(stack: Stack) -> None:
    """The server leading the stream (the gateways' consumers live there too), kept down for
    a while: clients connected to it must go on through the other seeds, not wait for it."""
    async def leader() -> str:
        nc = await nats.connect(servers=Settings.from_env(stack.env).nats_servers)
        try:
            info = await nc.jetstream().stream_info(stack.env.get("NATS_STREAM", "PARLEY"))
        finally:
            await nc.close()
        assert info.cluster is not None and info.cluster.leader, info
        return info.cluster.leader

    server = asyncio.run(leader()).replace("parley_", "nats-")  # server_name to process name
    assert stack.supervisor is not None
    with stack.supervisor.held(server):
        process(stack, server).kill()
        time.sleep(NATS_DOWN)  # the fault's length: the cluster runs on two servers meanwhile


def test_kill_9_of_the_nats_stream_leader_in_a_cluster(clustered: Stack) -> None:
    """Three NATS servers, the stream replicated on all: the others elect a leader, the
    projector's unacknowledged publishes are sent again (deduplicated by Nats-Msg-Id) and the
    gateway's consumer is recreated where it stopped."""
    survive(clustered, "kill -9 the NATS stream leader (3-server cluster)",
            kill_the_nats_stream_leader)


def gateway_servers(stack: Stack) -> list[str]:
    """The cluster members (`nats-N`) that hold a gateway's NATS connection (/connz)."""
    held = []
    for conf in sorted(Path(stack.env["PARLEY_DATA_DIR"]).glob("nats-*/nats.conf")):
        match = re.search(r'^http: "127\.0\.0\.1:(\d+)"', conf.read_text(), re.MULTILINE)
        assert match, conf
        connz = httpx.get(f"http://127.0.0.1:{match[1]}/connz", timeout=5).json()
        if any(c.get("name") == "parley-gateway" for c in connz.get("connections") or []):
            held.append(conf.parent.name)
    return held


def test_typing_goes_on_after_the_gateways_nats_server_is_killed(clustered: Stack) -> None:
    """Typing is NATS core: a gateway whose server died reconnects to another member and
    subscribes again, and frames cross the cluster between gateways on different members."""
    wait_ready(clustered, time.monotonic())
    api = Api(clustered.base_url)
    ann, bob = patiently(User, api, "Ann"), patiently(User, api, "Bob")
    chat = patiently(ann.group, bob, title="typing")["id"]
    server = gateway_servers(clustered)[0]
    assert clustered.supervisor is not None

    async def bob_sees_ann_typing(ann_ws: Socket, bob_ws: Socket) -> float:
        since = time.monotonic()
        while True:  # typing is at most once: Ann types again until a frame gets through
            await ann_ws.ws.send(json.dumps({"type": "typing", "chat_id": chat}))
            try:
                frame = await bob_ws.recv(2.5)  # past TYPING_INTERVAL: the next one is relayed
            except TimeoutError:
                assert time.monotonic() - since < RECOVERY_DEADLINE, "typing never came back"
                continue
            if frame["event"] == "typing":
                assert frame["data"] == {"chat_id": chat, "user_id": ann.id}, frame
                return time.monotonic() - since

    async def scenario() -> float:
        ann_ws, bob_ws = await opened(clustered, ann), await opened(clustered, bob)
        await synced(ann_ws, ann, chat, bob_ws)
        await bob_sees_ann_typing(ann_ws, bob_ws)
        process(clustered, server).kill()
        return await bob_sees_ann_typing(ann_ws, bob_ws)

    with clustered.supervisor.held(server):  # down until typing is seen again
        after = run(scenario())
    print(f"\ntyping after kill -9 of a gateway's NATS server ({server}): {after:.1f} s")
