"""The wire protocol of `/ws`: what arrives from NATS, the frames clients get, and close codes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ConfigDict

# Application close codes (4000-4999): the HTTP status they mirror, plus 4408 for a client that
# fell too far behind. Protocol codes used: 1009 (frame too large), 1011 (server error).
CLOSE_MALFORMED = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_TOO_SLOW = 4408
CLOSE_TOO_MANY = 4429  # the user already has as many sockets open as allowed
CLOSE_TOO_LARGE = 1009
CLOSE_SERVER_ERROR = 1011
CLOSE_TRY_AGAIN = 1013  # e.g. a resume could not be completed: reconnect with the same cursor

# Stream sequences are unsigned 64-bit; a cursor must also leave room for the `+ 1` of a replay.
MAX_CURSOR = 2**63 - 1
_CURSOR = re.compile(r"[0-9]{1,19}")
# `Nats-Msg-Id` as projectors/publisher.py writes it: the log position, then `.<index>` for the
# second and later public events of one stored event.
_MSG_ID = re.compile(r"([0-9]{1,19})(?:\.([0-9]{1,9}))?")

PONG = json.dumps({"event": "pong"})
MSG_ID = "Nats-Msg-Id"


class Envelope(BaseModel):
    """A message on `parley.>` as projectors/publisher.py writes it."""

    event: str
    data: dict[str, Any]
    position: int


class ServerFrame(BaseModel):
    """A frame sent to clients (CONTRACT.md, WebSocket `/ws`)."""

    event: str
    data: dict[str, Any]
    cursor: str


class ClientFrame(BaseModel):
    """A frame from a client: only `type` is common; other fields depend on it."""

    model_config = ConfigDict(extra="allow")

    type: str

    def field(self, name: str) -> object:
        return (self.model_extra or {}).get(name)


def cursor_of(sequence: int) -> str:
    """The cursor clients echo back to resume: the JetStream stream sequence (opaque to them)."""
    return str(sequence)


def parse_cursor(raw: str) -> int | None:
    """A cursor as `cursor_of` writes it (ASCII digits, in range), or None.

    Strict: `str.isdigit` and `int` also take "²", fullwidth digits or "1_000".
    """
    if _CURSOR.fullmatch(raw) is None:
        return None
    cursor = int(raw)
    return cursor if cursor <= MAX_CURSOR else None


EventKey = tuple[int, int]


def event_key(msg_id: str | None) -> EventKey | None:
    """(log position, index) from a message's `Nats-Msg-Id`; None for a message without one.

    Keys grow with the stream: the projector publishes in log order, and only a republished
    stretch (after JetStream's duplicate window, e.g. a projector down for minutes between
    publishing and tracking) brings an older key back, which is then a duplicate.
    """
    if msg_id is None:
        return None
    match = _MSG_ID.fullmatch(msg_id)
    if match is None:
        return None
    return int(match[1]), int(match[2] or 0)


@dataclass(frozen=True, slots=True)
class Frame:
    """One stream message, encoded once and shared by every connection that wants it.

    `position` (the event log position) and `data` stay available to the gateway for the
    membership bookkeeping and read-model handover that need them; clients see only `text`.
    `key` identifies the published event (from `Nats-Msg-Id`): a connection never sends one
    key twice.
    """

    subject: str
    sequence: int
    event: str
    data: dict[str, Any]
    position: int
    text: str
    key: EventKey | None = None
    texts: Mapping[int, str] | None = None  # per viewer, where a frame differs between them

    def text_for(self, user: int) -> str:
        """What `user` is sent: their own rendering if the frame has one, else `text`."""
        if self.texts is not None:
            return self.texts.get(user, self.text)
        return self.text

    def for_viewers(self, data_of: Mapping[int, dict[str, Any]]) -> Frame:
        """This frame with each viewer's own `data` (others keep the common one)."""
        texts = {user: ServerFrame(event=self.event, data=data,
                                   cursor=cursor_of(self.sequence)).model_dump_json()
                 for user, data in data_of.items()}
        return replace(self, texts=texts)

    @classmethod
    def decode(cls, subject: str, sequence: int, payload: bytes,
               headers: dict[str, str] | None = None) -> Frame:
        """Raises pydantic.ValidationError for a payload that is not an Envelope."""
        envelope = Envelope.model_validate_json(payload)
        text = ServerFrame(event=envelope.event, data=envelope.data,
                           cursor=cursor_of(sequence)).model_dump_json()
        return cls(subject, sequence, envelope.event, envelope.data, envelope.position, text,
                   key_of(headers))


def key_of(headers: dict[str, str] | None) -> EventKey | None:
    """The event key of a NATS message's headers (None without a `Nats-Msg-Id`)."""
    return event_key(headers.get(MSG_ID)) if headers else None
