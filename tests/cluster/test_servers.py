"""Faults of the cluster's servers while a writer posts through the router and a reader follows
over `/ws` (tests/faults' `survive`, every acknowledged post also read back with its
`X-Min-Position`): `kill -9` of the NATS server leading the stream (the two others elect a
leader; the projector's unacknowledged publishes are sent again, deduplicated by Nats-Msg-Id;
the gateways' consumers are recreated where they stopped), of the NATS server holding a
gateway's connection (typing, NATS core, comes back), and of the PostgreSQL replica (reads go
to the primary meanwhile and never miss a write)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import httpx
import nats

from parley.stack import Stack
from shared.settings import Settings
from tests.e2e.client import Api, User
from tests.e2e.sockets import Socket, opened, run, synced
from tests.faults.load import RECOVERY_DEADLINE, patiently, process, survive, wait_ready

NATS_DOWN = 10.0  # seconds a killed NATS member stays down: the others run the stream meanwhile
REPLICA_DOWN = 10.0  # seconds the killed replica stays down


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
        assert len(info.cluster.replicas or []) == 2, info.cluster  # R3: the leader and two
        return info.cluster.leader

    server = asyncio.run(leader()).replace("parley_", "nats-")  # server_name to process name
    assert stack.supervisor is not None
    with stack.supervisor.held(server):
        process(stack, server).kill()
        time.sleep(NATS_DOWN)


def test_kill_9_of_the_nats_stream_leader(cluster: Stack) -> None:
    survive(cluster, "kill -9 the NATS stream leader", kill_the_nats_stream_leader,
            check_reads=True)


def kill_the_replica(stack: Stack) -> None:
    """The replica's postmaster, kept down for a while, then restarted by the supervisor: it
    replays what it missed from the primary (its replication slot kept the WAL)."""
    assert stack.supervisor is not None
    with stack.supervisor.held("postgres-replica"):
        process(stack, "postgres-replica").kill()
        time.sleep(REPLICA_DOWN)


def test_kill_9_and_restart_of_the_replica(cluster: Stack) -> None:
    survive(cluster, "kill -9 the PostgreSQL replica", kill_the_replica, check_reads=True)
    query_apis = [url for name, url in cluster.listeners.items() if name.startswith("query")]
    deadline = time.monotonic() + RECOVERY_DEADLINE
    while not all(httpx.get(f"{url}/readyz", timeout=5).json().get("replica", {}).get(
            "reachable") for url in query_apis):
        assert time.monotonic() < deadline, "the query APIs never found the replica again"
        time.sleep(0.2)


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


def test_typing_goes_on_after_a_gateways_nats_server_is_killed(cluster: Stack) -> None:
    """Typing is NATS core: a gateway whose server died reconnects to another member and
    subscribes again, and frames cross the cluster between gateways on different members."""
    wait_ready(cluster, time.monotonic())
    api = Api(cluster.base_url)
    ann, bob = patiently(User, api, "Ann"), patiently(User, api, "Bob")
    chat = patiently(ann.group, bob, title="typing")["id"]
    server = gateway_servers(cluster)[0]
    assert cluster.supervisor is not None

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
        ann_ws, bob_ws = await opened(cluster, ann), await opened(cluster, bob)
        await synced(ann_ws, ann, chat, bob_ws)
        await bob_sees_ann_typing(ann_ws, bob_ws)
        process(cluster, server).kill()
        return await bob_sees_ann_typing(ann_ws, bob_ws)

    with cluster.supervisor.held(server):  # down until typing is seen again
        after = run(scenario())
    print(f"\ntyping after kill -9 of a gateway's NATS server ({server}): {after:.1f} s")
