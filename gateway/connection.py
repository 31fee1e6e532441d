"""One client session: a bounded outbox the router fills, one writer, one reader, one clock.

The router hands frames over synchronously; a client whose outbox is full is closed with 4408
(it reconnects with its last cursor) instead of slowing the feed down for everyone else.
Keepalive is left to uvicorn (`--ws-ping-interval`/`--ws-ping-timeout`): it pings at the
protocol level, which Starlette's WebSocket cannot, and drops peers that stop answering.

A session starts as a tap on the router (it sees every frame while it loads), reads the
user's membership intervals from the read model, replays the stream after its `?cursor=`
(if any) up to the sequence the feed had reached when the tap was set, then delivers the tapped
frames after that sequence and goes live on its own subjects: no gap and no duplicate at the
hand-over, and every chat frame passes the same membership filter (gateway/membership.py).

Whatever the stream holds, a session sends each event (its `Nats-Msg-Id` key) at most once: it
remembers the highest key it has sent, starting from the key at the client's cursor (what the
client saw before it reconnected), and drops anything at or below it (gateway/feed.py says how
an event gets into the stream twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import nats.errors
import psycopg
from nats.js.client import JetStreamContext
from prometheus_client import Counter, Gauge
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.feed import DUPLICATES, Feed, key_at
from gateway.limits import Limits, ResumesBusyError
from gateway.live import LiveRelay
from gateway.membership import Membership, chat_of, load_membership
from gateway.protocol import (
    CLOSE_MALFORMED,
    CLOSE_SERVER_ERROR,
    CLOSE_TOO_LARGE,
    CLOSE_TOO_SLOW,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    PONG,
    ClientFrame,
    EventKey,
    Frame,
    ServerFrame,
    cursor_of,
)
from gateway.replay import ReplayStalledError, replay, stream_bounds
from gateway.router import Router
from gateway.titles import DirectChatTitles
from shared import subjects
from shared.jwt.tokens import LEEWAY_SECONDS, InvalidTokenError, TokenClaims, TokenService
from shared.postgres.sessions import EndedSessions
from shared.subjects import SESSION_ENDED
from shared.web.endpoints import check_pool

log = logging.getLogger("parley.gateway")

OUTBOX_FRAMES = 1000
MAX_LOADING_FRAMES = 10_000  # live frames held while a resuming client replays
MAX_CLIENT_FRAME_BYTES = 64 * 1024
CLOSE_TIMEOUT_SECONDS = 10.0
MAX_TYPED_CHATS = 1000
# A resuming client that takes no frame for this long while its outbox is full holds a resume
# slot for nothing: it is closed as too slow, like a live client whose outbox overflows.
REPLAY_STALL_SECONDS = 20.0
SESSION_ENDED_REASON = "session ended (logged out)"
TOO_SLOW_REASON = "too slow, resume with cursor"
RESUMES_BUSY_REASON = "too many resumes at once, resume with the same cursor later"
# A server the session needs did not answer or is reconnecting: 1013, the client resumes.
UNAVAILABLE = (TimeoutError, psycopg.OperationalError, nats.errors.ConnectionClosedError,
               nats.errors.ConnectionReconnectingError, nats.errors.NoServersError)

CONNECTIONS = Gauge("parley_ws_connections", "Open WebSocket sessions",
                    multiprocess_mode="livesum")  # summed over live workers (parley up)
CLOSES = Counter("parley_ws_closes_total", "Ended WebSocket sessions by close code", ["code"])


@dataclass(frozen=True)
class Hub:
    """What sessions of one gateway process share."""

    router: Router
    tokens: TokenService
    feed: Feed
    pool: AsyncConnectionPool
    titles: DirectChatTitles
    js: JetStreamContext
    stream: str
    sessions: EndedSessions
    limits: Limits
    live: LiveRelay
    typing_interval: float  # seconds between two typing frames relayed per socket and chat


@dataclass(frozen=True)
class Close:
    """Why a session ends; code None means the client left first and nothing is sent."""

    code: int | None
    reason: str = ""


class ClientStalledError(Exception):
    """A resuming client took no frame for REPLAY_STALL_SECONDS."""


class Connection:
    """An authenticated client of `/ws`."""

    def __init__(self, websocket: WebSocket, claims: TokenClaims, hub: Hub,
                 cursor: int | None = None) -> None:
        self.websocket = websocket
        self.user_id = claims.user_id
        self.session_id = claims.session_id
        self.expires_at = claims.expires_at
        self.hub = hub
        self.tokens = hub.tokens
        self.router = hub.router
        self.cursor = cursor
        self.membership = Membership(self.user_id)
        self._loading: list[Frame] | None = []  # frames tapped while the session starts
        self._last_key: EventKey | None = None  # of the last event sent (or seen before resume)
        self._subjects: set[str] = set()
        self._outbox: asyncio.Queue[str] = asyncio.Queue(OUTBOX_FRAMES)
        self._closed: asyncio.Future[Close] = asyncio.get_running_loop().create_future()
        self._checks: set[asyncio.Task[None]] = set()  # session checks after re-auth
        self._typed: dict[int, float] = {}  # chat -> when a typing frame was last relayed

    async def serve(self) -> None:
        """Subscribe, accept, run until something ends the session, then close with its code."""
        # Tapped before the handshake completes, so anything published after the client sees
        # the socket open reaches it; everything up to `upper` comes from the replay.
        self.router.tap(self)
        upper = self.hub.feed.sequence
        CONNECTIONS.inc()
        tasks: list[asyncio.Task[None]] = []
        try:
            await self.websocket.accept()
            tasks = [asyncio.create_task(self._guard(work))
                     for work in (self._write(), self._read(), self._expire(),
                                  self._start(upper))]
            close = await self._closed
        finally:
            self._leave()
            tasks.extend(self._checks)
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
        """Called by the router: keep it while loading, else queue it if it is ours."""
        if self._loading is not None:
            if len(self._loading) >= MAX_LOADING_FRAMES:
                self._finish(CLOSE_TOO_SLOW, TOO_SLOW_REASON)
            else:
                self._loading.append(frame)
        elif self._fresh(frame) and self._wants(frame):
            self._send(frame.text_for(self.user_id))

    def send_live(self, text: str) -> None:
        """A typing or presence frame: sent once the session is live (no cursor, no replay)."""
        if self._loading is None:
            self._send(text)

    def membership_changed(self, frame: Frame) -> None:
        """Called by the router around a membership frame about this user (live only)."""
        if self._loading is not None:
            return  # the tapped copy of the frame is applied when loading ends
        self.membership.apply(frame)
        chat = chat_of(frame)
        if chat is None:
            return
        subject = subjects.chat(chat)
        if self.membership.is_member(chat) and subject not in self._subjects:
            self._join(subject)
        elif not self.membership.is_member(chat) and subject in self._subjects:
            self._subjects.discard(subject)
            self.router.unsubscribe(subject, self)

    # -- starting: snapshot, replay, hand-over ---------------------------------------------

    async def _start(self, upper: int) -> None:
        # Checked after the tap began: a session ending from now on arrives as a frame, one
        # that ended before is in the read model (it is committed before it is published).
        if await self._session_ended():
            return
        self.membership = await load_membership(self.hub.pool, self.user_id)
        floor = upper
        if self.cursor is not None:
            try:
                async with self.hub.limits.resume_slot():
                    floor = await self._resume(self.cursor, upper)
            except ResumesBusyError as exc:
                log.info("user %s: %s", self.user_id, exc)
                self._finish(CLOSE_TRY_AGAIN, RESUMES_BUSY_REASON)
                return
            except ReplayStalledError as exc:
                log.warning("user %s: %s", self.user_id, exc)
                self._finish(CLOSE_TRY_AGAIN, "replay interrupted, resume with cursor")
                return
            except ClientStalledError:
                self._finish(CLOSE_TOO_SLOW, TOO_SLOW_REASON)
                return
        self._go_live(floor)

    async def _resume(self, cursor: int, upper: int) -> int:
        """Replay what came after the cursor up to `upper`; the sequence live frames go on from.

        A cursor the stream no longer holds (retention), or never held (a recreated stream),
        gets `resync.required` instead: the client reloads from REST.
        """
        first, last = await stream_bounds(self.hub.js, self.hub.stream)
        if cursor + 1 < first or cursor > last:
            self._send(ServerFrame(event="resync.required", data={},
                                   cursor=cursor_of(upper)).model_dump_json())
            return upper
        # The client has seen the event at its cursor and everything before: a copy of any of
        # them further on is not sent again. (If that one message is gone, nothing is known.)
        self._last_key = await key_at(self.hub.js, self.hub.stream, cursor)
        async for frame in replay(self.hub.js, self.hub.stream, cursor, upper):
            if self._fresh(frame) and self._wants(frame, apply=True):
                frame = await self.hub.titles.render(frame)
                await self._put_replayed(frame.text_for(self.user_id))
        return max(upper, cursor)

    async def _put_replayed(self, text: str) -> None:
        """The replay waits for the writer, within bounds (it holds a resume slot)."""
        try:
            self._outbox.put_nowait(text)
        except asyncio.QueueFull:
            try:
                await asyncio.wait_for(self._outbox.put(text), REPLAY_STALL_SECONDS)
            except TimeoutError:
                raise ClientStalledError from None

    def _go_live(self, floor: int) -> None:
        """Synchronously (no await): deliver tapped frames after `floor`, then subscribe."""
        tapped, self._loading = self._loading or [], None
        self.router.untap(self)
        for frame in tapped:
            if frame.sequence > floor and self._fresh(frame) and self._wants(frame, apply=True):
                self._send(frame.text_for(self.user_id))
        self._join(subjects.user(self.user_id))
        for chat in self.membership.current():
            self._join(subjects.chat(chat))
        self.router.watch_user(self.user_id, self)

    def _fresh(self, frame: Frame) -> bool:
        """False for an event this session already sent, or sent before its cursor.

        The stream holds events in log order except for a republished stretch, so any key at
        or below the last one is a copy. Messages without a key (none from the projector) pass.
        """
        key = frame.key
        if key is None:
            return True
        if self._last_key is not None and key <= self._last_key:
            DUPLICATES.labels("session").inc()
            return False
        self._last_key = key
        return True

    def _wants(self, frame: Frame, apply: bool = False) -> bool:
        """The user's own frames, and chat frames of chats it was a member of at the time.

        `session.ended` is the gateway's own: it closes this socket if it names its session.
        """
        if frame.subject == subjects.user(self.user_id):
            if frame.event != SESSION_ENDED:
                return True
            if frame.data.get("session_id") == self.session_id:
                self._finish(CLOSE_UNAUTHORIZED, SESSION_ENDED_REASON)
            return False
        if apply:
            self.membership.apply(frame)
        return self.membership.admits(frame)

    # -- session state -------------------------------------------------------------------

    def _join(self, subject: str) -> None:
        self._subjects.add(subject)
        self.router.subscribe(subject, self)

    def _leave(self) -> None:
        self.router.untap(self)
        self.router.unwatch_user(self.user_id, self)
        for subject in self._subjects:
            self.router.unsubscribe(subject, self)
        self._subjects.clear()

    def _send(self, text: str) -> None:
        if self._closed.done():
            return
        try:
            self._outbox.put_nowait(text)
        except asyncio.QueueFull:
            self._finish(CLOSE_TOO_SLOW, TOO_SLOW_REASON)

    def _finish(self, code: int | None, reason: str = "") -> None:
        if not self._closed.done():
            self._leave()  # take no more frames from this moment
            self._closed.set_result(Close(code, reason))

    # -- the three tasks -----------------------------------------------------------------

    async def _guard(self, work: Coroutine[Any, Any, object]) -> None:
        try:
            await work
        except UNAVAILABLE as exc:
            # TimeoutError is an OSError too, but ours: NATS or PostgreSQL did not answer, or
            # are away. The client is told to come back with its cursor, not just dropped.
            log.warning("websocket session of user %s: %s unavailable (%s)", self.user_id,
                        "NATS" if isinstance(exc, nats.errors.Error) else "a server",
                        type(exc).__name__)
            if isinstance(exc, psycopg.OperationalError):
                check_pool(self.hub.pool)  # after a restart the next sessions get live ones
            self._finish(CLOSE_TRY_AGAIN, "server busy, resume with cursor")
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
            await self._handle(raw)

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

    async def _handle(self, raw: bytes) -> None:
        """`ping`, `auth` and `typing`; unknown types are ignored (a newer client against an older
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
        elif frame.type == "typing":
            await self._typing(frame.field("chat_id"))

    async def _typing(self, chat: object) -> None:
        """Relay to the chat's other members, at most once per `typing_interval` per chat.
        Without an integer `chat_id`, from a non-member, or too soon, it is dropped without a
        word, like an unknown type: the answer must not tell a non-member anything about the
        chat, and a hint that may be lost anyway is not worth closing a socket over."""
        if type(chat) is not int or self._loading is not None \
                or not self.membership.is_member(chat):
            return
        now = time.monotonic()
        if now - self._typed.get(chat, -math.inf) < self.hub.typing_interval:
            return
        if len(self._typed) >= MAX_TYPED_CHATS:  # keep only the entries that still matter
            self._typed = {c: t for c, t in self._typed.items()
                           if now - t < self.hub.typing_interval}
        self._typed[chat] = now
        await self.hub.live.typing(chat, self.user_id)

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
        if claims.session_id != self.session_id:  # a token of another login of this user
            self.session_id = claims.session_id
            check = asyncio.create_task(self._guard(self._session_ended()))
            self._checks.add(check)
            check.add_done_callback(self._checks.discard)

    async def _session_ended(self) -> bool:
        """Close with 4401 if this socket's session has ended (logged out)."""
        if await self.hub.sessions.session_ended(self.session_id):
            self._finish(CLOSE_UNAUTHORIZED, SESSION_ENDED_REASON)
            return True
        return False
