"""`parley erase-message N`: remove a deleted message's text wherever Parley still keeps it.

`DELETE /messages/{id}` takes a message out of every read model, every rebuild and every
client, but its text remains where a log keeps history: in the event log (its `Posted` and
`Edited` events), in the live stream until retention drops it (`message.created` /
`message.updated`), and for a voice message in object storage (the file). On a legal request
an operator runs this command after the deletion. It:

1. rewrites the message's stored events with `content` and `payload` set to null (the events
   stay, so positions, versions and every replay are unchanged: the message was deleted, so
   no read model shows it anyway);
2. deletes its `message.created` / `message.updated` messages from the JetStream stream;
3. removes a voice message's file from the bucket.

What it cannot reach stays an operator's task: database backups and WAL archives, replicas'
lag, the NATS servers' own backups, and what clients already received.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import nats
import psycopg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import ConsumerConfig, DeliverPolicy

from domain.app import Parley
from domain.attachment import Attachment
from domain.message import Message
from shared import subjects
from shared.s3.storage import Storage
from shared.settings import Settings

ERASED_FIELDS = ("content", "payload")
STREAM_EVENTS = ("message.created", "message.updated")
FETCH_SECONDS = 2.0


class NotDeletedError(Exception):
    """The message is not deleted: erasing its text would leave a message with none."""


@dataclass
class Erased:
    """What the command did."""

    message: int
    events: int = 0  # stored events rewritten
    stream_messages: list[int] = field(default_factory=list)  # stream sequences deleted
    objects: list[str] = field(default_factory=list)  # object keys removed
    notes: list[str] = field(default_factory=list)  # what it could not do


def erase_message(settings: Settings, number: int) -> Erased:
    app = Parley(env=settings.eventsourcing_env())
    try:
        erased = Erased(number)
        chat, attachment = _redact_log(app, settings, number, erased)
        if settings.nats_url:
            asyncio.run(_purge_stream(settings, chat, number, erased))
        else:
            erased.notes.append("NATS_URL not set: the live stream was not searched")
        if attachment is not None:
            _remove_file(app, settings, attachment, erased)
        return erased
    finally:
        app.close()


def _redact_log(app: Parley, settings: Settings, number: int,
                erased: Erased) -> tuple[int, UUID | None]:
    """Null the text of every stored event of the message; its chat and attachment."""
    originator = Message.create_id(number)
    stored = list(app.recorder.select_events(originator))
    if not stored:
        raise LookupError(f"no message {number}")
    transcoder = app.mapper.transcoder
    if not stored[-1].topic.endswith(":Message.Deleted"):
        raise NotDeletedError(f"message {number} is not deleted: DELETE it first")
    chat, attachment = 0, None
    with psycopg.connect(settings.database_url) as conn:
        for event in stored:
            state: dict[str, Any] = transcoder.decode(event.state)
            chat = int(state.get("chat", chat))
            payload = state.get("payload")
            if isinstance(payload, dict) and payload.get("attachment_id"):
                attachment = UUID(str(payload["attachment_id"]))
            if not any(state.get(name) is not None for name in ERASED_FIELDS):
                continue
            for name in ERASED_FIELDS:
                if name in state:
                    state[name] = None
            conn.execute("UPDATE parley_events SET state = %s WHERE originator_id = %s"
                         " AND originator_version = %s",
                         (transcoder.encode(state), originator, event.originator_version))
            erased.events += 1
    return chat, attachment


async def _purge_stream(settings: Settings, chat: int, number: int, erased: Erased) -> None:
    """Delete the message's frames from the stream: every message on its chat's subject is
    read once (an operator's command, not a hot path)."""
    nc = await nats.connect(servers=settings.nats_servers, name="parley-erase",
                            max_reconnect_attempts=-1, reconnect_time_wait=0.5)
    try:
        js = nc.jetstream()
        last = (await js.stream_info(settings.nats_stream)).state.last_seq
        sub = await js.subscribe(subjects.chat(chat), stream=settings.nats_stream,
                                 ordered_consumer=True,
                                 config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=FETCH_SECONDS)
                except NatsTimeoutError:
                    break  # nothing more on the subject
                envelope = json.loads(msg.data)
                if envelope.get("event") in STREAM_EVENTS and \
                        envelope.get("data", {}).get("id") == number:
                    sequence = msg.metadata.sequence.stream
                    await js.delete_msg(settings.nats_stream, sequence)
                    erased.stream_messages.append(sequence)
                if msg.metadata.sequence.stream >= last:
                    break
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()


def _remove_file(app: Parley, settings: Settings, attachment: UUID, erased: Erased) -> None:
    found: Attachment = app.repository.get(attachment)
    with psycopg.connect(settings.database_url) as conn:
        shared_by = conn.execute("SELECT count(*) FROM messages WHERE attachment_id = %s",
                                 (attachment,)).fetchone()
    if shared_by and shared_by[0]:  # posted again in a message still there: keep the file
        erased.notes.append(f"object {found.key!r} kept: {shared_by[0]} other message(s)"
                            " carry the same attachment")
        return
    if not settings.s3_endpoint:
        erased.notes.append(f"S3 not configured: remove object {found.key!r} by hand")
        return
    Storage(settings).remove(found.key)
    erased.objects.append(found.key)
