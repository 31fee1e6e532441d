"""Publish public payloads to NATS JetStream after the read models committed them.

Publishing is tracked (`nats` row) separately from the read models: after a crash between the
read-model commit and the acks, the events are rebuilt from the log and published again with
the same `Nats-Msg-Id`, which JetStream deduplicates within its duplicate window.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

import nats
from nats.js import JetStreamContext
from nats.js.api import PubAck, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from projectors.payloads import public_events
from projectors.runner import LiveProjector
from shared import subjects
from shared.settings import Settings

log = logging.getLogger(__name__)
PUBLISHER = "nats"
DUPLICATE_WINDOW_SECONDS = 120.0
ACK_TIMEOUT_SECONDS = 10.0  # for a whole batch's acknowledgements


def stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=settings.nats_stream,
        subjects=[subjects.all_subjects()],
        storage=StorageType.FILE,
        max_age=settings.nats_retention_days * 86400.0,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=settings.nats_replicas,
    )


async def ensure_stream(js: JetStreamContext, settings: Settings) -> None:
    """Create the stream, or bring its configuration in line with the settings: retention and
    replicas too (NATS 2.10+ changes a stream's replicas in place, copying it to new peers)."""
    config = stream_config(settings)
    try:
        await js.stream_info(settings.nats_stream)
    except NotFoundError:
        try:
            await js.add_stream(config)
            return
        except BadRequestError:
            pass  # created concurrently by another projector
    await js.update_stream(config)


class Publisher:
    """Publishes each public event once per notification id, in log order."""

    def __init__(self, js: JetStreamContext, runner: LiveProjector) -> None:
        self.js = js
        self.runner = runner
        self.position = runner.tracking.max_tracking_id(PUBLISHER) or 0
        self.confirmed = False  # the stream acknowledged our last batch: pipelining is safe

    async def publish(self, events: Sequence[tuple[int, object]], upto: int = 0) -> None:
        """Publish the events' payloads; then the publisher is at `upto` (or the last event):
        a batch may end with events that have nothing to publish, not even decoded.

        The batch is pipelined: every message is sent in log order on this one connection
        (so the stream holds them in that order), then all acknowledgements are awaited
        together. One write and one wake-up per batch instead of a round trip per message.
        If any is not acknowledged, none counts: the next try sends the batch again with the
        same Nats-Msg-Ids and JetStream drops what it already has.

        Until a batch was acknowledged (at start, after a failure) the first message goes alone
        and its acknowledgement is awaited before the rest are sent: while the stream has no
        leader (a NATS cluster electing one) a pipeline that began before the new leader took
        over would have its first messages refused and the later ones stored, and the next try
        would store the first ones after them, out of log order (the gateways drop an event
        older than the last they passed on as a copy).
        """
        last = max(self.position, upto)
        acks: list[asyncio.Future[PubAck]] = []
        try:
            for position, event in events:
                if position <= self.position:
                    continue
                for index, (subject, body) in enumerate(_messages(position, event)):
                    msg_id = f"{position}" if index == 0 else f"{position}.{index}"
                    acks.append(await self.js.publish_async(
                        subject, body, wait_stall=ACK_TIMEOUT_SECONDS,
                        headers={"Nats-Msg-Id": msg_id}))
                    if not self.confirmed:
                        await asyncio.wait_for(acks[-1], ACK_TIMEOUT_SECONDS)
                        self.confirmed = True
                last = max(last, position)
            if acks:
                await asyncio.wait_for(asyncio.gather(*acks), ACK_TIMEOUT_SECONDS)
        except BaseException:
            self.confirmed = False
            raise
        finally:
            for ack in acks:  # frees its slot of the client's pending-acks limit
                ack.cancel()
        if last > self.position:
            await asyncio.to_thread(self._track, last)
            self.position = last

    async def catch_up(self) -> None:
        """Publish what the read models committed but NATS never acknowledged (after a crash)."""
        while self.position < self.runner.readmodels_position:
            notifications = await asyncio.to_thread(
                self.runner.recorder.select_notifications, self.position, 1000,
                self.runner.readmodels_position, (), inclusive_of_start=False)
            if not notifications:
                break
            events = []
            for n in notifications:
                try:
                    events.append((n.id, self.runner.app.mapper.to_domain_event(n)))
                except Exception:  # the projector skipped it too (`log` in projection_skipped)
                    log.exception("not publishing the unreadable event at position %s", n.id)
            await self.publish(events, upto=notifications[-1].id)

    def _track(self, position: int) -> None:
        from eventsourcing.persistence import Tracking

        self.runner.tracking.insert_tracking(Tracking(PUBLISHER, position))


def _messages(position: int, event: object) -> list[tuple[str, bytes]]:
    """The NATS messages of one event; none (logged) for an event whose payload cannot be
    built: a bug there must not hold up every later event (the read models skip it alike)."""
    try:
        return [(public.subject, json.dumps({"event": public.event, "data": public.data,
                                             "position": position}).encode())
                for public in public_events(event)]
    except Exception:
        log.exception("not publishing the event at position %s: its payload failed", position)
        return []


async def connect(settings: Settings) -> nats.NATS:
    settings.require("nats_url")
    return await nats.connect(servers=settings.nats_servers, name="parley-projector",
                              max_reconnect_attempts=-1, reconnect_time_wait=0.5)
