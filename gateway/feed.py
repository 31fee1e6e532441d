"""The process's one JetStream consumer: every `parley.>` message from the stream's tail on.

One ordered (ephemeral, push, flow-controlled) consumer per gateway process rather than one
per client: NATS keeps a handful of consumers however many sockets are open, and frames reach
the router in stream order. The consumer starts just after the stream's last sequence when the
process starts; a client that wants older events resumes with its cursor (not yet built: a
short-lived consumer from the cursor, see gateway/connection.py).
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
from pydantic import ValidationError

from gateway.protocol import Frame
from gateway.router import Router
from shared import subjects

log = logging.getLogger("parley.gateway")
RETRY_SECONDS = 1.0
# The consumer is recreated after two missed heartbeats, e.g. once NATS restarted: a short
# interval keeps that pause in live delivery to a few seconds (nothing is lost meanwhile).
HEARTBEAT_SECONDS = 2.0


class Feed:
    """Subscribes once the stream exists (the projector creates it) and feeds the router."""

    def __init__(self, nc: NATS, stream: str, router: Router) -> None:
        self.nc = nc
        self.stream = stream
        self.router = router
        self.sequence = 0  # the last stream sequence dispatched
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
        if not self.router.wants(msg.subject):
            return  # no session in this process could take it: skip decoding
        try:
            frame = Frame.decode(msg.subject, sequence, msg.data)
        except ValidationError:
            log.warning("skipping undecodable message %s on %s", sequence, msg.subject)
            return
        self.router.dispatch(frame)
