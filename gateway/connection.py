"""One client session: a bounded outbox the router fills, one writer, one reader, one clock.

The router hands frames over synchronously; a client whose outbox is full is closed with 4408
(it reconnects with its last cursor) instead of slowing the feed down for everyone else.
Keepalive is left to uvicorn (`--ws-ping-interval`/`--ws-ping-timeout`): it pings at the
protocol level, which Starlette's WebSocket cannot, and drops peers that stop answering.

Where the next steps attach:
- membership: `serve` also joins `parley.chat.<id>` for the chats the user is in when it
  connects (read at a known log position), and `deliver` joins or leaves a chat subject when a
  membership event about this user arrives on `parley.user.<id>`; frames come in stream order,
  so a chat's events are routed exactly from the membership change on.
- resume: with `?cursor=N`, the session registers (buffering live frames) and replays the
  stream after N through a short-lived consumer, then sends the buffered frames with a
  sequence above the last replayed one; a cursor older than the stream's first sequence gets
  `{"event": "resync.required"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge
from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.protocol import (
    CLOSE_MALFORMED,
    CLOSE_SERVER_ERROR,
    CLOSE_TOO_LARGE,
    CLOSE_TOO_SLOW,
    CLOSE_UNAUTHORIZED,
    PONG,
    ClientFrame,
    Frame,
)
from gateway.router import Router
from shared import subjects
from shared.tokens import LEEWAY_SECONDS, InvalidTokenError, TokenClaims, TokenService

log = logging.getLogger("parley.gateway")

OUTBOX_FRAMES = 1000
MAX_CLIENT_FRAME_BYTES = 64 * 1024
CLOSE_TIMEOUT_SECONDS = 10.0

CONNECTIONS = Gauge("parley_ws_connections", "Open WebSocket sessions")
CLOSES = Counter("parley_ws_closes_total", "Ended WebSocket sessions by close code", ["code"])


@dataclass(frozen=True)
class Close:
    """Why a session ends; code None means the client left first and nothing is sent."""

    code: int | None
    reason: str = ""


class Connection:
    """An authenticated client of `/ws`."""

    def __init__(self, websocket: WebSocket, claims: TokenClaims, tokens: TokenService,
                 router: Router) -> None:
        self.websocket = websocket
        self.user_id = claims.user_id
        self.expires_at = claims.expires_at
        self.tokens = tokens
        self.router = router
        self._subjects: set[str] = set()
        self._outbox: asyncio.Queue[str] = asyncio.Queue(OUTBOX_FRAMES)
        self._closed: asyncio.Future[Close] = asyncio.get_running_loop().create_future()

    async def serve(self) -> None:
        """Subscribe, accept, run until something ends the session, then close with its code."""
        # Subscribed before the handshake completes, so anything published after the client
        # sees the socket open reaches it.
        self._join(subjects.user(self.user_id))
        CONNECTIONS.inc()
        tasks: list[asyncio.Task[None]] = []
        try:
            await self.websocket.accept()
            tasks = [asyncio.create_task(self._guard(work))
                     for work in (self._write(), self._read(), self._expire())]
            close = await self._closed
        finally:
            self._leave()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            CONNECTIONS.dec()
        CLOSES.labels(str(close.code or "client")).inc()
        if close.code is not None:
            if close.code == CLOSE_TOO_SLOW:
                log.info("closing the socket of user %s: %s", self.user_id, close.reason)
            # bounded: a client that stopped reading cannot take the close frame either
            with contextlib.suppress(TimeoutError, WebSocketDisconnect, OSError, RuntimeError):
                async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                    await self.websocket.close(close.code, close.reason)

    def deliver(self, frame: Frame) -> None:
        """Called by the router: queue the frame without waiting."""
        self._send(frame.text)

    # -- session state -------------------------------------------------------------------

    def _join(self, subject: str) -> None:
        self._subjects.add(subject)
        self.router.subscribe(subject, self)

    def _leave(self) -> None:
        for subject in self._subjects:
            self.router.unsubscribe(subject, self)
        self._subjects.clear()

    def _send(self, text: str) -> None:
        if self._closed.done():
            return
        try:
            self._outbox.put_nowait(text)
        except asyncio.QueueFull:
            self._finish(CLOSE_TOO_SLOW, "too slow, resume with cursor")

    def _finish(self, code: int | None, reason: str = "") -> None:
        if not self._closed.done():
            self._leave()  # take no more frames from this moment
            self._closed.set_result(Close(code, reason))

    # -- the three tasks -----------------------------------------------------------------

    async def _guard(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except (WebSocketDisconnect, OSError):
            self._finish(None)
        except Exception:
            log.exception("websocket session of user %s failed", self.user_id)
            self._finish(CLOSE_SERVER_ERROR, "server error")

    async def _write(self) -> None:
        while True:
            await self.websocket.send_text(await self._outbox.get())

    async def _read(self) -> None:
        while not self._closed.done():
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                self._finish(None)
                return
            text = message.get("text")
            raw: bytes = text.encode() if text is not None else message.get("bytes") or b""
            if len(raw) > MAX_CLIENT_FRAME_BYTES:
                self._finish(CLOSE_TOO_LARGE, "frame larger than 64 KiB")
                return
            self._handle(raw)

    async def _expire(self) -> None:
        # The leeway verify() grants: the socket lives exactly as long as its token would be
        # accepted by the HTTP APIs. A fresh token moves expires_at; we wake and look again.
        while True:
            remaining = self.expires_at + LEEWAY_SECONDS - time.time()
            if remaining <= 0:
                self._finish(CLOSE_UNAUTHORIZED, "access token expired")
                return
            await asyncio.sleep(remaining)

    # -- client frames -------------------------------------------------------------------

    def _handle(self, raw: bytes) -> None:
        """`ping` and `auth`; unknown types are ignored (a newer client against an older
        gateway keeps working), but a frame that is not a JSON object with a string `type` is
        a broken client and gets 4400."""
        try:
            frame = ClientFrame.model_validate_json(raw)
        except ValidationError:
            self._finish(CLOSE_MALFORMED, "malformed frame")
            return
        if frame.type == "ping":
            self._send(PONG)
        elif frame.type == "auth":
            self._reauthenticate(frame.field("token"))

    def _reauthenticate(self, token: object) -> None:
        if not isinstance(token, str):
            self._finish(CLOSE_UNAUTHORIZED, "auth frame without a token")
            return
        try:
            claims = self.tokens.verify(token, "access")
        except InvalidTokenError:
            self._finish(CLOSE_UNAUTHORIZED, "invalid or expired access token")
            return
        if claims.user_id != self.user_id:
            self._finish(CLOSE_UNAUTHORIZED, "access token of another user")
            return
        self.expires_at = max(self.expires_at, claims.expires_at)
