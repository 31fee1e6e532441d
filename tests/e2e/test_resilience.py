"""Clients lose nothing when a gateway process dies or NATS restarts: they resume by cursor."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway.protocol import CLOSE_TRY_AGAIN
from parley.stack import Stack
from tests.e2e.client import Api, User
from tests.e2e.servers import start_gateway
from tests.e2e.sockets import frames, opened, run, synced
from tests.ports import free_port


@pytest.fixture
def gateway_port(stack: Stack) -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    port, procs = free_port(), []
    yield port, procs
    for proc in procs:
        proc.kill()
        proc.wait()


def test_killed_gateway_loses_nothing(api: Api, stack: Stack,
                                      gateway_port: tuple[int, list]) -> None:
    port, procs = gateway_port
    log = Path(stack.env["PARLEY_DATA_DIR"]) / "logs" / "gateway-test.log"
    procs.append(start_gateway(stack, port, log))
    own = Stack(base_url=f"http://127.0.0.1:{port}", env=stack.env, processes={})
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]

    async def before() -> str:
        ws = await opened(own, bob)
        cursor = await synced(ws, ann, chat)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        return cursor

    cursor = run(before())
    missed = [ann.say(chat, f"while down {i}") for i in range(3)]
    procs.append(start_gateway(stack, port, log))

    async def after() -> None:
        ws = await opened(own, bob, cursor=cursor)
        assert [f["data"] for f in await frames(ws, 3)] == missed
        live = ann.say(chat, "back")
        assert [f["data"] for f in await frames(ws, 1)] == [live]
        await ws.close()

    run(after())


def nats_process(stack: Stack) -> psutil.Process:
    data_dir = stack.env["PARLEY_DATA_DIR"]
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline and cmdline[0].endswith("nats-server") and data_dir in " ".join(cmdline):
            return proc
    raise AssertionError("the embedded nats-server is not running")


def test_nats_restart_loses_nothing(api: Api, stack: Stack) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]

    async def scenario() -> None:
        ws = await opened(stack, bob)
        cursor = await synced(ws, ann, chat)
        server = nats_process(stack)
        assert stack.supervisor is not None
        with stack.supervisor.held("nats"):  # no restart until the writes are done
            server.terminate()
            server.wait(10)
            # Writes go on while NATS is down: they are committed and projected, not yet
            # published.
            during = [ann.say(chat, f"during outage {i}") for i in range(3)]
        # the supervisor starts NATS again, on the same port and store
        await ws.close()
        got: list = []
        deadline = time.monotonic() + 30
        while len(got) < 3 and time.monotonic() < deadline:
            # the gateway may still be reconnecting: resume until the events are there
            async with connect(f"ws{stack.base_url.removeprefix('http')}/ws"
                               f"?token={bob.token}&cursor={cursor}") as again:
                try:
                    while len(got) < 3:
                        frame = json.loads(await asyncio.wait_for(again.recv(), 3))
                        if frame["event"] == "message.created":
                            got.append(frame["data"])
                except TimeoutError:
                    got = []
        assert got == during

    run(scenario())


def test_a_resume_while_nats_does_not_answer_is_closed_1013(api: Api, stack: Stack) -> None:
    """A replay the gateway cannot start is refused with 'try again', never a silent drop."""
    ann = User(api)
    chat = ann.group(title="stalled")["id"]

    async def scenario() -> int | None:
        ws = await opened(stack, ann)
        cursor = await synced(ws, ann, chat)
        await ws.close()
        server = nats_process(stack)
        server.suspend()  # up, but answering nothing: the gateway's JetStream calls time out
        try:
            async with connect(f"ws{stack.base_url.removeprefix('http')}/ws"
                               f"?token={ann.token}&cursor={cursor}") as again:
                with pytest.raises(ConnectionClosed):
                    while True:
                        await asyncio.wait_for(again.recv(), 30)
                return again.close_code
        finally:
            server.resume()

    assert run(scenario()) == CLOSE_TRY_AGAIN
