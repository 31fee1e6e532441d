"""`/ws` as the e2e tests use it: one way to run a scenario, build the URL, open a socket and
read its frames. A socket may get its own user's `user.registered` (published just after the
registration answered, perhaps after the socket opened): that frame, once, and no other's, is
the only one the readers here pass over."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from parley.stack import Stack
from tests.e2e.client import User

T = TypeVar("T")
TIMEOUT = 15.0


def run(work: Coroutine[Any, Any, T], timeout: float = 120) -> T:
    return asyncio.run(asyncio.wait_for(work, timeout))


def ws_url(stack: Stack, **params: str | None) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"ws{stack.base_url.removeprefix('http')}/ws" + (f"?{query}" if query else "")


def own_registration(frame: dict[str, Any], user_id: int) -> bool:
    """Whether `frame` is the registration of the user `user_id` (anyone else's is a leak)."""
    return frame.get("event") == "user.registered" and frame["data"]["id"] == user_id


class Socket:
    """A user's client socket; frames that arrived before a pong are kept, not lost."""

    def __init__(self, ws: ClientConnection, user_id: int) -> None:
        self.ws = ws
        self.user_id = user_id
        self.early: deque[str] = deque()
        self.registration_seen = False

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        text = self.early.popleft() if self.early else await asyncio.wait_for(
            self.ws.recv(), timeout)
        return dict(json.loads(text))

    def passes_over(self, frame: dict[str, Any]) -> bool:
        """True for the socket's own registration, the first time it comes."""
        if self.registration_seen or not own_registration(frame, self.user_id):
            return False
        self.registration_seen = True
        return True

    async def close(self) -> None:
        await self.ws.close()


async def frames(ws: Socket, count: int) -> list[dict[str, Any]]:
    """The next `count` frames, passing over the user's own `user.registered` once."""
    got: list[dict[str, Any]] = []
    while len(got) < count:
        frame = await ws.recv(TIMEOUT)
        if not ws.passes_over(frame):
            got.append(frame)
    return got


async def next_is(ws: Socket, event: str, data_id: int) -> dict[str, Any]:
    """The next frame is `event` about `data_id`: a marker written after whatever must not
    reach the socket, so anything that leaked would have come before it (one feed, in stream
    order) and fails here, while the marker proves the socket is still being fed."""
    (frame,) = await frames(ws, 1)
    assert (frame["event"], frame["data"].get("id")) == (event, data_id), frame
    return frame


async def synced(ws: Socket, sender: User, chat: int, *others: Socket) -> str:
    """Post a marker and drop every frame before it on each socket (setup events may be
    published after a socket opened, which rightly delivers them); the marker's cursor."""
    marker = sender.say(chat, f"sync {uuid.uuid4()}")
    cursor = ""
    for each in (ws, *others):
        while True:
            (frame,) = await frames(each, 1)
            if frame["data"] == marker:
                cursor = str(frame["cursor"])
                break
    return cursor


async def opened(stack: Stack, user: User, cursor: str | None = None,
                 **options: Any) -> Socket:
    """A socket whose session has started: the pong to a ping proves it is being served.

    Frames may come before the pong (a replay, a resync notice): they are kept for `frames`.
    """
    ws = Socket(await connect(ws_url(stack, token=user.token, cursor=cursor), **options),
                user.id)
    await ws.ws.send(json.dumps({"type": "ping"}))
    while True:
        text = str(await asyncio.wait_for(ws.ws.recv(), TIMEOUT))
        if json.loads(text)["event"] == "pong":
            return ws
        ws.early.append(text)


# -- raw connections (a test that sets its own connect options, or expects a close) ----------

async def next_frame(ws: ClientConnection) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))


async def close_code(ws: ClientConnection, user: int | None = None) -> int:
    """Wait for the server's close frame; any frame before it fails the test, except the own
    `user.registered` of `user` (an authenticated socket may get it first)."""
    try:
        while True:
            frame = await next_frame(ws)
            if user is None or not own_registration(frame, user):
                raise AssertionError(f"expected the server to close, got a frame: {frame!r}")
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, f"no close frame: {closed}"
        return closed.rcvd.code


async def refused(url: str, **options: Any) -> int:
    async with connect(url, open_timeout=TIMEOUT, **options) as ws:
        return await close_code(ws)


async def pong(ws: ClientConnection, user: int) -> dict[str, Any]:
    """The answer to a ping; only the own `user.registered` of `user` may come before it."""
    await ws.send(json.dumps({"type": "ping"}))
    while (frame := await next_frame(ws)).get("event") != "pong":
        assert own_registration(frame, user), frame
    return frame
