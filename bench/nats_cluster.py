"""The live stream on a three-server NATS cluster, on this machine: what replication costs the
projector's publishing, and what `kill -9` of the stream's leader costs a steady publisher.

    python bench/nats_cluster.py [--messages 20000] [--rounds 3]

Publishes as the projector does (pipelined batches of 1000 with a Nats-Msg-Id each, the acks
awaited together, fsync on every write) to an R1 and an R3 stream of one cluster, then kills
the R3 stream's leader under a publisher sending one message every 10 ms (each retried until
acknowledged) and reports the time to a new leader and the longest wait for an ack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import nats
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from parley.embedded import ChildProcess, nats_cluster

BATCH = 1000
BODY = json.dumps({"event": "message.created", "data": {"id": 1, "content": "x" * 200}}).encode()


async def publish_rate(js: JetStreamContext, stream: str, messages: int) -> float:
    """Messages per second, pipelined as projectors/publisher.py does."""
    started = time.monotonic()
    for first in range(0, messages, BATCH):
        acks = [await js.publish_async(f"{stream}.x", BODY, headers={"Nats-Msg-Id": str(n)})
                for n in range(first, min(first + BATCH, messages))]
        await asyncio.gather(*acks)
    return messages / (time.monotonic() - started)


async def leader_of(js: JetStreamContext, stream: str) -> str:
    """The stream's leader ("" while there is none, or no answer within the context's timeout:
    asked with a short one, so a lost request does not count as election time)."""
    try:
        info = await js.stream_info(stream)
    except (nats.errors.Error, TimeoutError):
        return ""
    return info.cluster.leader or "" if info.cluster else ""


async def kill_the_leader(nc: nats.NATS, servers: list[ChildProcess]) -> dict[str, float]:
    """Seconds from the kill to a new leader, and the longest any one publish waited."""
    js, quick = nc.jetstream(), nc.jetstream(timeout=0.5)
    stop, waits = asyncio.Event(), []

    async def steady() -> None:
        n = 0
        while not stop.is_set():
            started = time.monotonic()
            while True:
                try:
                    await js.publish("R3.x", BODY, headers={"Nats-Msg-Id": f"k{n}"}, timeout=2)
                    break
                except (nats.errors.Error, TimeoutError):
                    await asyncio.sleep(0.1)
            waits.append(time.monotonic() - started)
            n += 1
            await asyncio.sleep(0.01)

    publisher = asyncio.create_task(steady())
    await asyncio.sleep(2)
    old = await leader_of(js, "R3")
    servers[int(old.removeprefix("parley_")) - 1].process.kill()
    killed = time.monotonic()
    while True:  # polled: NATS announces a new leader on a system subject only
        if await leader_of(quick, "R3") not in ("", old):
            break
        await asyncio.sleep(0.05)
    elected = time.monotonic() - killed
    await asyncio.sleep(5)
    stop.set()
    await publisher
    return {"new_leader_s": round(elected, 2), "longest_publish_wait_s": round(max(waits), 2)}


async def main(messages: int, rounds: int) -> None:
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp, nats_cluster(Path(tmp)) as (urls, servers):
            nc = await nats.connect(servers=urls.split(","), max_reconnect_attempts=-1,
                                    reconnect_time_wait=0.5)
            js = nc.jetstream()
            rates: dict[str, list[int]] = {}
            for replicas in (1, 3):
                name = f"R{replicas}"
                await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"],
                                                 num_replicas=replicas, duplicate_window=120))
            for name in ("R1", "R3", "R1", "R3"):  # alternating: the first is a warm-up too
                rates.setdefault(name, []).append(round(await publish_rate(js, name, messages)))
            print(json.dumps({"msgs_per_s": rates, **await kill_the_leader(nc, servers)}),
                  flush=True)
            await nc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.rounds))
