"""What one gateway process lets clients hold: sockets per user, resumes at once.

The bounds are per process. The default stack (two API workers, each serving `/ws`) shows the
default sockets bound; a gateway process of its own with small bounds shows them exactly.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import nats
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway.connection import RESUMES_BUSY_REASON
from gateway.protocol import CLOSE_TOO_MANY, CLOSE_TRY_AGAIN
from parley.stack import Stack
from shared import subjects
from shared.settings import Settings
from tests.e2e.client import Api, User
from tests.e2e.servers import start_gateway
from tests.e2e.sockets import TIMEOUT, Socket, next_is, run, ws_url
from tests.ports import free_port

BULK_PASSED = 75.0  # seconds the feed may take to pass the bulk on a loaded machine

SOCKETS, RESUME_WAIT = 2, "1"


@pytest.fixture(scope="module")
def bounded(stack: Stack) -> Iterator[Stack]:
    """A gateway process with 2 sockets per user and one resume at a time."""
    port = free_port()
    log = Path(stack.env["PARLEY_DATA_DIR"]) / "logs" / "gateway-limits.log"
    proc = start_gateway(stack, port, log, WS_MAX_SOCKETS_PER_USER=str(SOCKETS),
                         WS_MAX_CONCURRENT_RESUMES="1", WS_RESUME_WAIT=RESUME_WAIT)
    yield Stack(base_url=f"http://127.0.0.1:{port}", env=stack.env, processes={})
    proc.kill()
    proc.wait()


async def attempt(stack: Stack, user: User, cursor: str | None = None) -> Socket | tuple[int, str]:
    """A socket that answered a ping, or the code and reason it was closed with instead."""
    ws = await connect(ws_url(stack, token=user.token, cursor=cursor))
    try:
        await ws.send(json.dumps({"type": "ping"}))
        socket = Socket(ws, user.id)
        while True:
            text = str(await asyncio.wait_for(ws.recv(), TIMEOUT))
            if json.loads(text)["event"] == "pong":
                return socket
            socket.early.append(text)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, f"no close frame: {closed}"
        return closed.rcvd.code, closed.rcvd.reason


async def opened_once_freed(stack: Stack, user: User, cursor: str | None = None) -> Socket:
    """A socket, once what the server holds for a closed one is released (just after the
    client's close completes): until then the attempts are refused as busy."""
    deadline = time.monotonic() + TIMEOUT
    while isinstance(result := await attempt(stack, user, cursor), tuple):
        assert result[0] in (CLOSE_TOO_MANY, CLOSE_TRY_AGAIN), result
        assert time.monotonic() < deadline, f"still refused: {result}"
    return result


def test_a_users_sockets_beyond_the_default_bound_are_closed_4429(api: Api,
                                                                   stack: Stack) -> None:
    limit = Settings.from_env(stack.env).ws_max_sockets_per_user
    ann, bob = User(api, "Ann"), User(api, "Bob")

    async def scenario() -> None:
        sockets: list[Socket] = []
        # per process: the first refusal comes once one worker holds `limit` of ann's sockets
        for _ in range(limit * 10):
            result = await attempt(stack, ann)
            if isinstance(result, tuple):
                break
            sockets.append(result)
        assert result == (CLOSE_TOO_MANY, f"too many connections: at most {limit} per user")
        assert len(sockets) >= limit
        other = await attempt(stack, bob)
        assert isinstance(other, Socket), other
        for ws in (*sockets, other):
            await ws.close()
        await (await opened_once_freed(stack, ann)).close()

    run(scenario())


def test_a_users_sockets_beyond_the_bound_are_closed_4429(api: Api, bounded: Stack) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")

    async def scenario() -> None:
        first, second = [await attempt(bounded, ann) for _ in range(SOCKETS)]
        assert isinstance(first, Socket) and isinstance(second, Socket)
        assert await attempt(bounded, ann) == (
            CLOSE_TOO_MANY, f"too many connections: at most {SOCKETS} per user")
        other = await attempt(bounded, bob)  # per user
        assert isinstance(other, Socket), other
        await first.close()
        again = await opened_once_freed(bounded, ann)
        for ws in (second, other, again):
            await ws.close()

    run(scenario())


def resumes(stack: Stack, state: str) -> float:
    """The gateway's `parley_ws_resumes` gauge (resumes replaying, or waiting for a slot)."""
    text = httpx.get(f"{stack.base_url}/metrics").text
    match = re.search(rf'^parley_ws_resumes{{state="{state}"}} (\S+)$', text, re.MULTILINE)
    assert match is not None, text
    return float(match[1])


async def close_of(stack: Stack, user: User, cursor: str) -> tuple[int, str]:
    """The code and reason a socket is closed with, before it got any frame."""
    async with connect(ws_url(stack, token=user.token, cursor=cursor)) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            frame = await asyncio.wait_for(ws.recv(), TIMEOUT)
            raise AssertionError(f"expected the server to close, got {frame!r}")
    assert closed.value.rcvd is not None, f"no close frame: {closed.value}"
    return closed.value.rcvd.code, closed.value.rcvd.reason


def test_resumes_beyond_the_bound_wait_then_are_closed_1013(api: Api, stack: Stack,
                                                           bounded: Stack) -> None:
    """One slow resume holds the only slot: another resume waits WS_RESUME_WAIT and is told to
    come back (1013), a connection without a cursor is served at once, and once the slow one
    is gone a resume goes through."""
    settings = Settings.from_env(stack.env)
    holder, ann, bob = User(api, "Holder"), User(api, "Ann"), User(api, "Bob")
    # far more than the holder's outbox (1000 frames) and socket buffers can take: its replay
    # cannot finish while it reads nothing
    count, pad = 3000, "x" * 8000

    async def scenario() -> None:
        watcher = await attempt(bounded, bob)
        assert isinstance(watcher, Socket), watcher
        nc = await nats.connect(settings.nats_url)
        try:
            js = nc.jetstream()
            cursor = str((await js.stream_info(settings.nats_stream)).state.last_seq)
            for i in range(count):
                body = {"event": "test.bulk", "data": {"i": i, "pad": pad}, "position": 0}
                await nc.publish(subjects.user(holder.id), json.dumps(body).encode())
            # on the same connection, so stored after all of them
            mark = {"event": "test.mark", "data": {}, "position": 0}
            await js.publish(subjects.user(bob.id), json.dumps(mark).encode())
        finally:
            await nc.close()
        # The gateway's feed has passed the bulk: the holder's replay covers all of it. A
        # point to wait for, not a latency: 24 MB through the feed take long on a busy machine.
        while (await watcher.recv(BULK_PASSED))["event"] != "test.mark":
            pass
        await watcher.close()

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        address = urlsplit(bounded.base_url)
        await asyncio.get_running_loop().sock_connect(sock, (address.hostname, address.port))
        slow = await connect(ws_url(bounded, token=holder.token, cursor=cursor), sock=sock,
                             max_queue=1, compression=None, close_timeout=1)
        try:
            # the replay has begun (it holds the slot), and the holder stops reading
            while json.loads(await asyncio.wait_for(slow.recv(), TIMEOUT))["event"] \
                    != "test.bulk":
                pass
            assert resumes(bounded, "replaying") == 1
            assert await close_of(bounded, ann, cursor) == (CLOSE_TRY_AGAIN, RESUMES_BUSY_REASON)
            fresh = await attempt(bounded, bob)  # no cursor: no slot needed
            assert isinstance(fresh, Socket), fresh
            await fresh.close()
        finally:
            slow.transport.abort()
        deadline = time.monotonic() + TIMEOUT
        while resumes(bounded, "replaying") > 0:  # the holder's session ends
            assert time.monotonic() < deadline, "the slot was not released"
            await asyncio.sleep(0.05)
        resumed = await attempt(bounded, ann, cursor)
        assert isinstance(resumed, Socket), resumed
        sent = ann.group(title="after the resume")
        # nothing of ann's since the cursor but (perhaps) her own registration
        await next_is(resumed, "chat.created", sent["id"])
        await resumed.close()

    run(scenario())
