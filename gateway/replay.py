"""Replay a stretch of the stream for one resuming client: a short-lived ordered consumer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from pydantic import ValidationError

from gateway.protocol import Frame
from shared import subjects

log = logging.getLogger("parley.gateway")
FETCH_TIMEOUT_SECONDS = 10.0


class ReplayStalledError(Exception):
    """The stream stopped delivering before the replay was complete."""


async def stream_bounds(js: JetStreamContext, stream: str) -> tuple[int, int]:
    """The oldest sequence the stream still holds (retention drops older ones), and the last."""
    info = await js.stream_info(stream)
    return int(info.state.first_seq), int(info.state.last_seq)


async def replay(js: JetStreamContext, stream: str, after: int,
                 until: int) -> AsyncIterator[Frame]:
    """Frames with stream sequence in (after, until], in order."""
    if until <= after:
        return
    sub = await js.subscribe(
        subjects.all_subjects(), stream=stream, ordered_consumer=True,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        config=ConsumerConfig(opt_start_seq=after + 1))
    try:
        sequence = after
        while sequence < until:
            try:
                msg = await sub.next_msg(timeout=FETCH_TIMEOUT_SECONDS)
            except NatsTimeoutError:
                # Never hand over with a hole: the client must come back with its cursor.
                raise ReplayStalledError(f"replay stalled at {sequence} of {until}") from None
            sequence = msg.metadata.sequence.stream
            if sequence > until:
                return
            try:
                yield Frame.decode(msg.subject, sequence, msg.data, msg.headers)
            except ValidationError:
                log.warning("skipping undecodable message %s on %s", sequence, msg.subject)
    finally:
        try:
            await sub.unsubscribe()
        except NatsError:
            pass
