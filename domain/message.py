"""Messages: each message is its own aggregate, so a busy chat is never one hot aggregate."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import ids
from domain.errors import ForbiddenError, InvalidCommandError, NotFoundError

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
        reply_to: int | None  # the message of the same chat this one answers

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["reply_to"] = None

    class Edited(Aggregate.Event):
        """Carries the whole message, so its public payload is a function of this event alone.

        Version 2 added `reply_to`: no message was a reply before it, so version-1 events
        are upcast with None."""

        class_version = 2

        number: int
        content: str
        chat: int
        author: int
        type: str
        payload: dict[str, Any] | None
        posted_at: datetime
        reply_to: int | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["reply_to"] = None

    class Deleted(Aggregate.Event):
        """Gone from every read model. Its text stays in the earlier events of the log (and
        in the live stream until retention drops it): README, "Erasing a message"."""

        number: int
        chat: int
        by: int

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
        self.deleted = False

    def check_in(self, chat: int) -> None:
        """InvalidCommandError unless this is a message of `chat` that is still there."""
        if self.chat != chat or self.deleted:
            raise InvalidCommandError("not a message of this chat")

    def check_reply_in(self, chat: int) -> None:
        """A reply answers a message of its own chat that is still there."""
        try:
            self.check_in(chat)
        except InvalidCommandError:
            raise InvalidCommandError("reply_to_id must be a message of the same chat") from None

    def edit(self, by: int, content: str) -> None:
        """Only the author, only text messages."""
        if self.deleted:
            raise NotFoundError("Message not found")
        if by != self.author or self.type == SYSTEM:
            raise ForbiddenError("You can only edit your own messages")
        if self.type != TEXT:
            raise InvalidCommandError("Only text messages can be edited")
        self._edited(number=self.number, content=content, chat=self.chat, author=self.author,
                     type=self.type, payload=self.payload, posted_at=self.created_on,
                     reply_to=self.reply_to)

    @event(Edited)
    def _edited(self, number: int, content: str, chat: int, author: int, type: str,
                payload: dict[str, Any] | None, posted_at: datetime,
                reply_to: int | None) -> None:
        self.content = content
        self.edited = True

    def delete(self, by: int, group_creator: int | None) -> None:
        """The author, or the creator of the group chat it is in (`group_creator`: None in a
        direct chat); never a system message (the chat's own history)."""
        if self.deleted:
            raise NotFoundError("Message not found")
        if self.type == SYSTEM:
            raise ForbiddenError("System messages cannot be deleted")
        if by != self.author and by != group_creator:
            raise ForbiddenError("Only the author or the group's creator can delete a message")
        self._deleted(number=self.number, chat=self.chat, by=by)

    @event(Deleted)
    def _deleted(self, number: int, chat: int, by: int) -> None:
        self.deleted = True


def versions(events: Iterable[object]) -> list[tuple[str | None, datetime]]:
    """Every version of a message from its own stored events, oldest first: the post, then
    each edit, as (content, when). NotFoundError if there are none or it was deleted (an erased
    message is deleted too: `parley erase-message` only erases deleted ones)."""
    found: list[tuple[str | None, datetime]] = []
    for stored in events:
        if isinstance(stored, (Message.Posted, Message.Edited)):
            found.append((stored.content, stored.timestamp))
        elif isinstance(stored, Message.Deleted):
            raise NotFoundError("Message not found")
    if not found:
        raise NotFoundError("Message not found")
    return found
