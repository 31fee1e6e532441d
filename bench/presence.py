"""Typing and presence across two gateway processes: frame latency, and 1,000 sockets arriving.

    python bench/presence.py [--typing 300] [--sockets 1000] [--json FILE]

Starts a system of its own (embedded servers, projector, one API worker, in a temporary
directory) and two more gateway processes on it, A and B, as compose would run them.

typing: Ann on A and Bob on B share `--chats` group chats; Ann sends a `typing` frame every
`--every` seconds, rotating over the chats so the per-chat interval (1.8 s) never drops one. The
latency is from just before the send to the frame on Bob's socket (one clock, this process).

presence: a watcher on A shares one group chat with each block of 10 users; `--sockets` users
then each open one socket, half on A, half on B, `--parallel` handshakes at a time. Reported:
for each user, the time from its handshake completing to the watcher's `presence` frame saying
it is online (p50/p99/max), the time until the watcher has all of them, and the same for the
offline frames after every socket closes at once. Frames lost are counted, not waited for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from live import Api, BenchUser, raise_fd_limit, summary
from stats import cpu_seconds

from parley.stack import StackOptions, running_stack
from tests.ports import free_port

WAIT = 120.0


@contextlib.contextmanager
def gateway(env: dict[str, str], log: Path) -> Iterator[str]:
    """One more gateway process on the system's servers; its base URL."""
    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait()


async def socket(url: str, user: BenchUser) -> ClientConnection:
    """A socket whose session is live: a typing frame or presence reaches it only then, and a
    pong proves the read loop runs (the session goes live right after, once its memberships
    are loaded, so the benches also wait for a first frame where they need one)."""
    ws = await connect(f"ws{url.removeprefix('http')}/ws?token={user.token}", max_queue=None)
    await ws.send(json.dumps({"type": "ping"}))
    while json.loads(await asyncio.wait_for(ws.recv(), WAIT))["event"] != "pong":
        pass
    return ws


async def next_event(ws: ClientConnection, event: str, timeout: float = WAIT) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["event"] == event:
                return dict(frame["data"])


async def bench_typing(api: Api, a: str, b: str, args: argparse.Namespace) -> dict[str, Any]:
    ann, bob = await api.register_many(2, 2)
    chats = [await api.group(ann, [bob]) for _ in range(args.chats)]
    ann_a, bob_b = await socket(a, ann), await socket(b, bob)
    # Bob's session is live once a typing frame reaches it (keep sending until one does).
    async with asyncio.timeout(WAIT):
        while True:
            await ann_a.send(json.dumps({"type": "typing", "chat_id": chats[0]}))
            with contextlib.suppress(TimeoutError):
                await next_event(bob_b, "typing", 0.5)
                break
    sent: dict[int, float] = {}
    latencies: list[float] = []

    async def receive() -> None:
        while len(latencies) < args.typing:
            data = await next_event(bob_b, "typing")
            latencies.append(time.perf_counter() - sent[data["chat_id"]])

    reader = asyncio.create_task(receive())
    await asyncio.sleep(2.5)  # chats[0]'s interval passes
    for i in range(args.typing):
        chat = chats[i % len(chats)]
        sent[chat] = time.perf_counter()
        await ann_a.send(json.dumps({"type": "typing", "chat_id": chat}))
        await asyncio.sleep(args.every)
    lost = 0
    try:
        await asyncio.wait_for(reader, 10)
    except TimeoutError:
        lost = args.typing - len(latencies)
    await ann_a.close()
    await bob_b.close()
    return {"frames": args.typing, "lost": lost, "latency": summary(sorted(latencies))}


async def bench_presence(api: Api, a: str, b: str, args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    users = await api.register_many(args.sockets + 1, args.register_parallel)
    watcher, users = users[0], users[1:]
    for start in range(0, len(users), 10):
        await api.group(watcher, users[start:start + 10])
    setup = time.perf_counter() - started
    watch = await socket(a, watcher)
    await asyncio.sleep(1)  # the watcher's session goes live (its memberships are loaded)
    opened: dict[int, float] = {}
    seen: dict[bool, dict[int, float]] = {True: {}, False: {}}
    everyone = {True: asyncio.Event(), False: asyncio.Event()}

    async def watch_frames() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                data = await next_event(watch, "presence", 3600)
                seen[data["online"]].setdefault(data["user_id"], time.perf_counter())
                if len(seen[data["online"]]) == len(users):
                    everyone[data["online"]].set()

    watching = asyncio.create_task(watch_frames())
    gate = asyncio.Semaphore(args.parallel)

    async def one(i: int, user: BenchUser) -> ClientConnection:
        async with gate:
            ws = await socket(a if i % 2 == 0 else b, user)
            opened[user.id] = time.perf_counter()
            return ws

    cpu0, t0 = cpu_seconds(), time.perf_counter()
    sockets = await asyncio.gather(*(one(i, u) for i, u in enumerate(users)))
    connected = time.perf_counter() - t0
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(everyone[True].wait(), WAIT)
    online_all = time.perf_counter() - t0
    online = sorted(seen[True][u] - opened[u] for u in opened if u in seen[True])
    t1 = time.perf_counter()
    await asyncio.gather(*(ws.close() for ws in sockets))
    closed = {u.id: time.perf_counter() for u in users}
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(everyone[False].wait(), WAIT)
    offline_all = time.perf_counter() - t1
    offline = sorted(seen[False][u] - closed[u] for u in closed if u in seen[False])
    watching.cancel()
    await watching
    await watch.close()
    return {"sockets": len(users), "setup_seconds": setup, "connect_seconds": connected,
            "online": {"all_seen_after": online_all, "lost": len(users) - len(online),
                       "per_user": summary(online)},
            "offline": {"all_seen_after": offline_all, "lost": len(users) - len(offline),
                        "per_user": summary(offline)},
            "client_cpu_seconds": cpu_seconds() - cpu0}


async def run(base: str, a: str, b: str, args: argparse.Namespace) -> dict[str, Any]:
    api = Api(base)
    try:
        result: dict[str, Any] = {"nproc": os.cpu_count(), "loadavg": os.getloadavg()}
        if args.typing:
            result["typing"] = await bench_typing(api, a, b, args)
        if args.sockets:
            result["presence"] = await bench_presence(api, a, b, args)
        return result
    finally:
        await api.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--typing", type=int, default=300, help="typing frames (0: skip)")
    parser.add_argument("--every", type=float, default=0.05, help="seconds between them")
    parser.add_argument("--chats", type=int, default=60, help="chats the typing rotates over")
    parser.add_argument("--sockets", type=int, default=1000, help="users connecting (0: skip)")
    parser.add_argument("--parallel", type=int, default=50, help="handshakes at once")
    parser.add_argument("--register-parallel", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    raise_fd_limit(args.sockets * 2 + 200)
    with tempfile.TemporaryDirectory(prefix="parley-presence-bench-") as tmp:
        data = Path(tmp)
        options = StackOptions(data_dir=data, port=0, log_dir=data, workers=1, extra_env={
            "REGISTER_MAX_PER_ADDRESS": "100000", "WRITE_RATE_PER_USER": "1000",
            "WRITE_BURST_PER_USER": "10000", "WS_MAX_SOCKETS_PER_USER": "100"})
        with running_stack(options) as stack, \
                gateway(stack.env, data / "gateway-a.log") as a, \
                gateway(stack.env, data / "gateway-b.log") as b:
            result = asyncio.run(run(stack.base_url, a, b, args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
