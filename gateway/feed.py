"""The process's one JetStream consumer: every `parley.>` message from the stream's tail on.

One ordered (ephemeral, push, flow-controlled) consumer per gateway process rather than one
per client: NATS keeps a handful of consumers however many sockets are open, and frames reach
the router in stream order. The consumer starts just after the stream's last sequence when the
process starts; a client that wants older events resumes with its cursor (a short-lived
consumer from the cursor, gateway/replay.py).

The stream may hold one event twice: the projector publishes with the log position as
`Nats-Msg-Id`, but JetStream forgets ids after its duplicate window (2 minutes), so a projector
that stopped between publishing and tracking for longer republishes a stretch as new entries.
The feed drops every message whose event key is not above the last one it passed on, so the
router (and the membership bookkeeping it drives) sees each event once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from prometheus_client import Counter
from pydantic import ValidationError

from gateway.protocol import EventKey, Frame, key_of
from gateway.router import Router
from gateway.titles import DirectChatTitles
from shared import subjects

log = logging.getLogger("parley.gateway")
DUPLICATES = Counter("parley_ws_duplicates_dropped_total",
                     "Stream messages dropped because their event was already delivered",
                     ["path"])
RETRY_SECONDS = 1.0
# The consumer is recreated after two missed heartbeats, e.g. once NATS restarted: a short
# interval keeps that pause in live delivery to a few seconds (nothing is lost meanwhile).
HEARTBEAT_SECONDS = 2.0


class Feed:
    """Subscribes once the stream exists (the projector creates it) and feeds the router."""

    def __init__(self, nc: NATS, stream: str, router: Router,
                 titles: DirectChatTitles) -> None:
        self.nc = nc
        self.titles = titles
        self.stream = stream
        self.router = router
        self.sequence = 0  # the last stream sequence dispatched
        self.key: EventKey | None = None  # the highest event key dispatched
        self.live = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sub: JetStreamContext.PushSubscription | None = None

    async def start(self, wait: float) -> None:
        """Subscribe in the background; wait up to `wait` s so a fresh process starts live."""
        self._task = asyncio.create_task(self._subscribe())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.live.wait(), wait)

    async def stop(self) -> None:
        """Stop delivering; the server drops the ephemeral consumer once nobody listens."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sub is not None:
            with contextlib.suppress(NatsError):
                await self._sub.unsubscribe()

    async def _subscribe(self) -> None:
        js = self.nc.jetstream()
        warned = False
        while True:
            try:
                info = await js.stream_info(self.stream)
                self.sequence = info.state.last_seq
                self.key = await key_at(js, self.stream, self.sequence)
                # Ordered consumers recreate themselves after a gap, a lost heartbeat or a
                # reconnect, from the last sequence they delivered. Before the first message
                # nats-py restarts from sequence 1; `_on_message` drops those replays.
                self._sub = await js.subscribe(
                    subjects.all_subjects(), stream=self.stream, cb=self._on_message,
                    ordered_consumer=True, idle_heartbeat=HEARTBEAT_SECONDS,
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                    config=ConsumerConfig(opt_start_seq=self.sequence + 1))
            except (NatsError, TimeoutError) as exc:
                if not warned:
                    log.warning("waiting for stream %s: %s", self.stream, type(exc).__name__)
                    warned = True
                await asyncio.sleep(RETRY_SECONDS)
                continue
            log.info("gateway live on stream %s after sequence %s", self.stream, self.sequence)
            self.live.set()
            return

    async def _on_message(self, msg: Msg) -> None:
        sequence = msg.metadata.sequence.stream
        if sequence <= self.sequence:
            return  # replayed by a consumer reset: already dispatched, or older than our start
        self.sequence = sequence
        key = key_of(msg.headers)
        if key is not None:
            if self.key is not None and key <= self.key:
                DUPLICATES.labels("live").inc()
                log.debug("dropping message %s on %s: event %s again", sequence, msg.subject, key)
                return
            self.key = key
        if not self.router.wants(msg.subject):
            return  # no session in this process could take it: skip decoding
        try:
            frame = Frame.decode(msg.subject, sequence, msg.data, msg.headers)
        except ValidationError:
            log.warning("skipping undecodable message %s on %s", sequence, msg.subject)
            return
        self.router.dispatch(await self.titles.render(frame))


async def key_at(js: JetStreamContext, stream: str, sequence: int) -> EventKey | None:
    """The event key of the message at `sequence`; None if there is none (or it is gone)."""
    if sequence <= 0:
        return None
    try:
        msg = await js.get_msg(stream, seq=sequence)
    except NotFoundError:
        return None
    return key_of(msg.headers)
