"""The wire protocol of `/ws`: what arrives from NATS, the frames clients get, and close codes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

# Application close codes (4000-4999): the HTTP status they mirror, plus 4408 for a client that
# fell too far behind. Protocol codes used: 1009 (frame too large), 1011 (server error).
CLOSE_MALFORMED = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_TOO_SLOW = 4408
CLOSE_TOO_LARGE = 1009
CLOSE_SERVER_ERROR = 1011
CLOSE_TRY_AGAIN = 1013  # e.g. a resume could not be completed: reconnect with the same cursor

PONG = json.dumps({"event": "pong"})


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


@dataclass(frozen=True, slots=True)
class Frame:
    """One stream message, encoded once and shared by every connection that wants it.

    `position` (the event log position) and `data` stay available to the gateway for the
    membership bookkeeping and read-model handover that need them; clients see only `text`.
    """

    subject: str
    sequence: int
    event: str
    data: dict[str, Any]
    position: int
    text: str

    @classmethod
    def decode(cls, subject: str, sequence: int, payload: bytes) -> Frame:
        """Raises pydantic.ValidationError for a payload that is not an Envelope."""
        envelope = Envelope.model_validate_json(payload)
        text = ServerFrame(event=envelope.event, data=envelope.data,
                           cursor=cursor_of(sequence)).model_dump_json()
        return cls(subject, sequence, envelope.event, envelope.data, envelope.position, text)
