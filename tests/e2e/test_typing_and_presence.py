"""Typing and presence across two gateway processes (CONTRACT.md "Typing and presence").

Both are live only: NATS core between the processes, no cursor. Where a frame must NOT arrive,
a later frame published by the same process on the same path is the marker: one NATS
connection delivers one publisher's messages in order, so a leak would come before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from websockets.exceptions import ConnectionClosed

from parley.stack import Stack
from tests.e2e.client import Api, User
from tests.e2e.servers import start_gateway
from tests.e2e.sockets import TIMEOUT, Socket, opened, run, synced
from tests.ports import free_port

TTL = "5"  # PRESENCE_TTL of the test's gateway processes: expiry is seen in seconds
INTERVAL = 2.0  # TYPING_INTERVAL of the test's gateway processes
DEADLINE = 60.0


def gateway(stack: Stack, name: str, **settings: str) -> tuple[Stack, subprocess.Popen[bytes]]:
    port = free_port()
    log = Path(stack.env["PARLEY_DATA_DIR"]) / "logs" / f"gateway-{name}.log"
    proc = start_gateway(stack, port, log, **settings)
    return Stack(base_url=f"http://127.0.0.1:{port}", env=stack.env, processes={}), proc


@pytest.fixture(scope="module")
def two(stack: Stack) -> Iterator[tuple[Stack, Stack]]:
    """Two gateway processes on the same NATS and PostgreSQL."""
    a, proc_a = gateway(stack, "presence-a", PRESENCE_TTL=TTL, TYPING_INTERVAL=str(INTERVAL))
    b, proc_b = gateway(stack, "presence-b", PRESENCE_TTL=TTL, TYPING_INTERVAL=str(INTERVAL))
    yield a, b
    for proc in (proc_a, proc_b):
        proc.kill()
        proc.wait()


async def next_event(ws: Socket, event: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The data of the next `event` frame, passing over frames of other kinds."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await ws.recv(max(0.01, deadline - time.monotonic()))
        if frame["event"] == event:
            assert "cursor" not in frame, frame  # live only: nothing to resume from
            return dict(frame["data"])


async def typing(ws: Socket, chat: int) -> None:
    await ws.ws.send(json.dumps({"type": "typing", "chat_id": chat}))


def test_typing_reaches_the_other_members_on_both_processes_only(
        api: Api, two: tuple[Stack, Stack]) -> None:
    a, b = two
    ann, bob, carol, dave = (User(api, n) for n in ("Ann", "Bob", "Carol", "Dave"))
    team = ann.group(bob, carol)["id"]
    side = ann.group(dave)["id"]  # Dave shares this one with Ann, not `team`

    async def scenario() -> None:
        ann_a, ann_b, bob_b = await opened(a, ann), await opened(b, ann), await opened(b, bob)
        carol_a, dave_b = await opened(a, carol), await opened(b, dave)
        await synced(ann_a, ann, team, ann_b, bob_b, carol_a)
        await synced(dave_b, ann, side)

        await typing(ann_a, team)
        assert await next_event(bob_b, "typing") == {"chat_id": team, "user_id": ann.id}
        assert await next_event(carol_a, "typing") == {"chat_id": team, "user_id": ann.id}
        await typing(ann_a, side)  # the marker for Dave: `team`'s would have come first
        assert await next_event(dave_b, "typing") == {"chat_id": side, "user_id": ann.id}
        # The marker for Ann's own sockets, from the same process as her frame: Carol's.
        await typing(carol_a, team)
        for own in (ann_a, ann_b):
            assert await next_event(own, "typing") == {"chat_id": team, "user_id": carol.id}

        # A non-member's typing is dropped (the socket stays open); its next one, in a chat
        # of its own, is the marker.
        await typing(dave_b, team)
        await typing(dave_b, side)
        assert await next_event(ann_a, "typing") == {"chat_id": side, "user_id": dave.id}
        assert await next_event(bob_b, "typing") == {"chat_id": team, "user_id": carol.id}
        for ws in (ann_a, ann_b, bob_b, carol_a, dave_b):
            await ws.close()

    run(scenario())


def test_typing_is_relayed_at_most_once_per_interval_per_chat(
        api: Api, two: tuple[Stack, Stack]) -> None:
    a, b = two
    ann, bob = User(api, "Ann"), User(api, "Bob")
    first, second = ann.group(bob)["id"], ann.group(bob)["id"]

    async def scenario() -> None:
        ann_a, bob_b = await opened(a, ann), await opened(b, bob)
        await synced(ann_a, ann, second, bob_b)
        started = time.monotonic()
        for _ in range(5):
            await typing(ann_a, first)
        await typing(ann_a, second)  # another chat: not limited by the first's
        assert await next_event(bob_b, "typing") == {"chat_id": first, "user_id": ann.id}
        assert await next_event(bob_b, "typing") == {"chat_id": second, "user_id": ann.id}
        # Typing on: the next relay of `first` comes no sooner than the interval after it.
        async def keep_typing() -> None:
            while True:
                await typing(ann_a, first)
                await asyncio.sleep(0.2)

        typist = asyncio.create_task(keep_typing())
        try:
            again = await next_event(bob_b, "typing", DEADLINE)
        finally:
            typist.cancel()
        assert again == {"chat_id": first, "user_id": ann.id}
        assert time.monotonic() - started >= INTERVAL
        await ann_a.close()
        await bob_b.close()

    run(scenario())


def presence_rows(stack: Stack, user: int) -> int:
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        row = conn.execute("SELECT count(*) FROM presence_sockets WHERE user_id = %s"
                           " AND expires_at > now()", (user,)).fetchone()
        return int(row[0]) if row else 0


def wait_rows(stack: Stack, user: int, count: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while (rows := presence_rows(stack, user)) != count:
        assert time.monotonic() < deadline, f"{rows} presence rows of {user}, not {count}"
        time.sleep(0.05)


def seen_by_rest(viewer: User, user: User, chat: int) -> tuple[bool, str | None]:
    profile = viewer.get(f"/users/{user.id}")
    assert profile.status_code == 200, profile.text
    body = profile.json()
    members = {m["id"]: m for m in viewer.get(f"/chats/{chat}/members").json()}
    member = members[user.id]
    assert (member["online"], member["last_seen_at"]) == (body["online"], body["last_seen_at"])
    return body["online"], body["last_seen_at"]


def test_a_user_is_online_while_any_socket_is_open_on_any_process(
        api: Api, stack: Stack, two: tuple[Stack, Stack]) -> None:
    a, b = two
    eve, frank, grace = User(api, "Eve"), User(api, "Frank"), User(api, "Grace")
    chat = eve.group(frank, grace)["id"]
    assert seen_by_rest(eve, frank, chat) == (False, None)  # never seen

    async def scenario() -> None:
        eve_a = await opened(a, eve)
        await synced(eve_a, eve, chat)
        frank_b = await opened(b, frank)
        assert await next_event(eve_a, "presence") == {
            "user_id": frank.id, "online": True, "last_seen_at": None}
        assert seen_by_rest(eve, frank, chat) == (True, None)

        frank_a = await opened(a, frank)  # a second socket, on the other process
        await asyncio.to_thread(wait_rows, stack, frank.id, 2)
        await frank_b.close()
        await asyncio.to_thread(wait_rows, stack, frank.id, 1)
        assert seen_by_rest(eve, frank, chat) == (True, None)
        # Process b would have announced Frank offline before it announces Grace online.
        grace_b = await opened(b, grace)
        assert await next_event(eve_a, "presence") == {
            "user_id": grace.id, "online": True, "last_seen_at": None}

        await frank_a.close()
        offline = await next_event(eve_a, "presence")
        assert offline["user_id"] == frank.id and offline["online"] is False
        assert offline["last_seen_at"] is not None
        assert seen_by_rest(eve, frank, chat) == (False, offline["last_seen_at"])
        # Every process tells its sockets: Grace's, on the other one, hears it too.
        news = await next_event(grace_b, "presence")
        assert news["user_id"] == frank.id
        await eve_a.close()
        await grace_b.close()

    run(scenario())


def test_a_killed_process_leaves_no_one_online_after_the_expiry(
        api: Api, stack: Stack, two: tuple[Stack, Stack]) -> None:
    a, _ = two
    crashing, proc = gateway(stack, "presence-killed", PRESENCE_TTL=TTL)
    henry, ivan = User(api, "Henry"), User(api, "Ivan")
    chat = henry.group(ivan)["id"]

    async def scenario() -> None:
        henry_a = await opened(a, henry)
        await synced(henry_a, henry, chat)
        ivan_c = await opened(crashing, ivan)
        assert (await next_event(henry_a, "presence"))["online"] is True
        assert seen_by_rest(henry, ivan, chat) == (True, None)
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        offline = await next_event(henry_a, "presence", DEADLINE)
        assert offline["user_id"] == ivan.id and offline["online"] is False
        assert time.monotonic() - killed_at >= float(TTL) / 3  # the expiry, not a close
        assert seen_by_rest(henry, ivan, chat) == (False, offline["last_seen_at"])
        await henry_a.close()
        with contextlib.suppress(OSError, ConnectionClosed):
            await ivan_c.close()

    try:
        run(scenario())
    finally:
        proc.kill()
        proc.wait()
