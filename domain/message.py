"""Messages: each message is its own aggregate, so a busy chat is never one hot aggregate."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import ids
from domain.errors import ForbiddenError, InvalidCommandError

TEXT, VOICE, SYSTEM = "text", "voice", "system"


def check_postable(type: str, content: str | None, payload: dict[str, Any] | None) -> None:
    """What a client may post: text with content and no payload, voice with a payload and no
    content; system messages are the server's own (`ChatCommands` writes them)."""
    if type == SYSTEM:
        raise ForbiddenError("System messages are written by the server only")
    if type == TEXT:
        if not content or not content.strip() or payload is not None:
            raise InvalidCommandError("A text message needs non-empty content and no payload")
    elif payload is None or content is not None:
        raise InvalidCommandError("A voice message needs a payload (attachment_id, duration_ms,"
                                  " codec) and no content")


class Message(Aggregate):
    """A text, voice or system message in one chat."""

    class Posted(Aggregate.Created):
        """Version 2 added `reply_to`; stored version-1 events are upcast when read."""

        class_version = 2

        number: int
        chat: int
        author: int
        type: str
        content: str | None
        payload: dict[str, Any] | None
        reply_to: int | None  # the message this one answers (no command sets it yet)

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["reply_to"] = None

    class Edited(Aggregate.Event):
        """Carries the whole message, so its public payload is a function of this event alone."""

        number: int
        content: str
        chat: int
        author: int
        type: str
        payload: dict[str, Any] | None
        posted_at: datetime

    @staticmethod
    def create_id(number: int) -> UUID:
        return ids.message_id(number)

    @event(Posted)
    def __init__(self, number: int, chat: int, author: int, type: str, content: str | None,
                 payload: dict[str, Any] | None, reply_to: int | None = None) -> None:
        self.number = number
        self.chat = chat
        self.author = author
        self.type = type
        self.content = content
        self.payload = payload
        self.reply_to = reply_to
        self.edited = False

    def edit(self, by: int, content: str) -> None:
        """Only the author, only text messages."""
        if by != self.author or self.type == SYSTEM:
            raise ForbiddenError("You can only edit your own messages")
        if self.type != TEXT:
            raise InvalidCommandError("Only text messages can be edited")
        self._edited(number=self.number, content=content, chat=self.chat, author=self.author,
                     type=self.type, payload=self.payload, posted_at=self.created_on)

    @event(Edited)
    def _edited(self, number: int, content: str, chat: int, author: int, type: str,
                payload: dict[str, Any] | None, posted_at: datetime) -> None:
        self.content = content
        self.edited = True
