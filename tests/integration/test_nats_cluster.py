"""The live stream on a three-server NATS cluster: the stream is replicated on all three, and
`kill -9` of its leader while the projector publishes loses nothing and stores nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamInfo

from domain.app import Claim, Parley
from gateway.app import connect_nats
from parley.embedded import ChildProcess, nats_cluster
from projectors import main as projector
from projectors.publisher import PUBLISHER, connect, ensure_stream
from shared.settings import Settings
from tests.integration.projection import query
from tests.integration.test_publisher import stream_messages

Cluster = tuple[str, list[ChildProcess]]
USERS = 300
KILL_AFTER = 100  # published messages before the stream leader is killed
DEADLINE = 90.0  # an election and a catch-up on two loaded cores


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with nats_cluster(tmp_path) as running:
        yield running


async def stream_info(settings: Settings) -> StreamInfo:
    nc = await nats.connect(servers=settings.nats_servers)
    try:
        return await nc.jetstream().stream_info(settings.nats_stream)
    finally:
        await nc.close()


async def until_replicated(settings: Settings, messages: int = 0) -> StreamInfo:
    """Stream info once it has a leader and every other server is a current replica holding
    at least `messages` messages."""
    deadline = time.monotonic() + DEADLINE
    while True:
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            info = await stream_info(settings)
            replicas = info.cluster.replicas or [] if info.cluster else []
            if (info.cluster and info.cluster.leader and len(replicas) == 2
                    and all(peer.current and not peer.offline and not peer.lag
                            for peer in replicas)
                    and info.state.messages >= messages):
                return info
        assert time.monotonic() < deadline, "the stream never got three current replicas"
        await asyncio.sleep(0.2)


def test_the_stream_gets_its_replicas_and_changes_them_in_place(
        cluster: Cluster) -> None:
    """NATS_REPLICAS: the stream is created with it, and an existing stream is brought to it
    at the next start (NATS copies the stream to the new peers)."""
    urls, _ = cluster
    one = Settings.from_env({"NATS_URL": urls, "NATS_STREAM": "REPLICAS"})
    three = Settings.from_env({"NATS_URL": urls, "NATS_STREAM": "REPLICAS", "NATS_REPLICAS": "3"})
    assert three.nats_replicas == 3 and len(three.nats_servers) == 3

    async def scenario() -> None:
        nc = await nats.connect(servers=one.nats_servers)
        try:
            js = nc.jetstream()
            await ensure_stream(js, one)
            info = await js.stream_info("REPLICAS")
            assert info.config.num_replicas == 1 and not (info.cluster and info.cluster.replicas)
            await ensure_stream(js, three)
            info = await until_replicated(three)
            assert info.config.num_replicas == 3 and info.cluster is not None
            names = {info.cluster.leader, *(p.name for p in info.cluster.replicas or [])}
            assert names == {"parley_1", "parley_2", "parley_3"}
        finally:
            await nc.close()

    asyncio.run(asyncio.wait_for(scenario(), DEADLINE * 2))


def test_kill_9_of_the_stream_leader_while_publishing_loses_nothing(
        settings: Settings, cluster: Cluster) -> None:
    """Users register steadily while the projector publishes; the stream's leader is killed
    mid-way. The stream must hold every event once, in log order (its sequences 1..N are the
    events' positions in order), and the killed server, restarted on its store, catches up."""
    urls, servers = cluster
    settings = replace(settings, nats_url=urls, nats_replicas=3)
    app = Parley(env=settings.eventsourcing_env())
    killed: list[ChildProcess] = []

    def published() -> int:
        rows = query(settings, "SELECT notification_id FROM projection_tracking"
                               " WHERE application_name = %s", (PUBLISHER,))
        return rows[0][0] if rows else 0

    async def write() -> None:
        for i in range(USERS):
            await asyncio.to_thread(app.register_user, Claim("anonymous", f"k{i}", "fp"),
                                    f"c{i}@example.com", "h", f"C{i}", None, "t")
            await asyncio.sleep(0.02)

    async def kill_the_leader() -> None:
        info = await until_replicated(settings, KILL_AFTER)
        assert info.cluster is not None and info.cluster.leader
        leader = servers[int(info.cluster.leader.removeprefix("parley_")) - 1]
        leader.process.kill()
        killed.append(leader)
        since, before = time.monotonic(), await asyncio.to_thread(published)
        while True:  # the tracking row moves once a batch is acknowledged again
            if await asyncio.to_thread(published) != before:
                break
            await asyncio.sleep(0.05)
        print(f"\nkill -9 of the stream leader: the projector's publishing stalled"
              f" {time.monotonic() - since:.1f} s")

    async def scenario() -> None:
        stop = asyncio.Event()
        projecting = asyncio.create_task(projector.run(settings, stop))
        writing = asyncio.create_task(write())
        await kill_the_leader()
        await writing
        head = app.recorder.max_notification_id()
        deadline = time.monotonic() + DEADLINE
        while await asyncio.to_thread(published) != head:
            assert time.monotonic() < deadline, "the publisher never caught up"
            assert not projecting.done(), projecting
            await asyncio.sleep(0.2)
        stop.set()
        await projecting

    try:
        asyncio.run(asyncio.wait_for(scenario(), DEADLINE * 3))
        positions = [n.id for n in app.recorder.select_notifications(0, 10 * USERS)
                     if n.topic.endswith("User.Registered")]
    finally:
        app.close()
    stored = stream_messages(urls, settings.nats_stream)
    assert len(positions) == USERS
    assert [msg_id for msg_id, _ in stored] == [str(p) for p in positions]  # once, in order
    assert [body["data"]["display_name"] for _, body in stored] == [f"C{i}" for i in range(USERS)]

    killed[0].restart()
    info = asyncio.run(until_replicated(settings, USERS))
    assert (info.state.first_seq, info.state.last_seq) == (1, USERS)


def test_the_services_connect_while_their_first_seed_is_down(cluster: Cluster) -> None:
    """A client knows the cluster's other members only once connected: it needs every seed
    to start while one server is down (a restart of the whole system during an outage)."""
    urls, servers = cluster
    servers[0].stop()
    settings = Settings.from_env({"NATS_URL": urls})

    async def connected() -> list[bool]:
        clients = [await connect(settings), await connect_nats(settings)]
        try:
            return [client.is_connected for client in clients]
        finally:
            for client in clients:
                await client.close()

    assert asyncio.run(asyncio.wait_for(connected(), DEADLINE)) == [True, True]
