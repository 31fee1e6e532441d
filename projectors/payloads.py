"""The public payload of each event, published to NATS after the read models committed it.

Payloads are a function of the event alone (events carry what they need), so republishing
after a crash yields byte-identical messages. Message payloads are the REST `MessageOut`.
"""

from __future__ import annotations

from functools import singledispatch

from domain.chat import Chat
from domain.message import Message
from domain.reaction import Reaction
from domain.read_marker import ReadMarker
from domain.session import Session
from domain.user import User
from projectors.base import PublicEvent
from shared import subjects
from shared.schemas import MessageOut, PublicUser, ReactionOut, dump, format_timestamp
from shared.subjects import SESSION_ENDED


@singledispatch
def public_events(event: object) -> list[PublicEvent]:
    """Private events (sessions, idempotency keys, password hashes) are never published."""
    return []


@public_events.register
def _(event: Session.Revoked) -> list[PublicEvent]:
    """For the gateway only (it closes that session's sockets), on the user's own subject."""
    if event.user_number is None:  # a version-1 event: its tokens expired long ago
        return []
    data = {"session_id": str(event.originator_id)}
    return [PublicEvent(subjects.user(event.user_number), SESSION_ENDED, data)]


@public_events.register
def _(event: User.Registered) -> list[PublicEvent]:
    user = PublicUser(id=event.number, display_name=event.display_name,
                      avatar_url=event.avatar_url)
    return [PublicEvent(subjects.user(event.number), "user.registered", dump(user))]


@public_events.register
def _(event: Chat.Created) -> list[PublicEvent]:
    created = format_timestamp(event.timestamp)
    data = {"id": event.number, "title": event.title, "is_group": event.is_group,
            "created_at": created, "creator_id": event.creator, "last_activity_at": created,
            "member_ids": event.members}
    return [PublicEvent(subjects.chat(event.number), "chat.created", data)]


@public_events.register
def _(event: Chat.Renamed) -> list[PublicEvent]:
    data = {"id": event.chat, "title": event.title}
    return [PublicEvent(subjects.chat(event.chat), "chat.updated", data)]


@public_events.register
def _(event: Chat.MembersAdded) -> list[PublicEvent]:
    data = {"chat_id": event.chat, "user_ids": event.user_ids}
    return [PublicEvent(subjects.chat(event.chat), "chat.member_added", data)]


@public_events.register
def _(event: Chat.MemberRemoved) -> list[PublicEvent]:
    data = {"chat_id": event.chat, "user_id": event.user_id}
    return [PublicEvent(subjects.chat(event.chat), "chat.member_removed", data)]


@public_events.register
def _(event: Chat.Deleted) -> list[PublicEvent]:
    return [PublicEvent(subjects.chat(event.chat), "chat.deleted", {"id": event.chat})]


@public_events.register
def _(event: Message.Posted) -> list[PublicEvent]:
    message = MessageOut.of(event, event.timestamp)
    return [PublicEvent(subjects.chat(event.chat), "message.created", dump(message))]


@public_events.register
def _(event: Message.Edited) -> list[PublicEvent]:
    message = MessageOut.of(event, event.posted_at, edited_at=event.timestamp)
    return [PublicEvent(subjects.chat(event.chat), "message.updated", dump(message))]


@public_events.register
def _(event: Message.Deleted) -> list[PublicEvent]:
    data = {"id": event.number, "chat_id": event.chat}
    return [PublicEvent(subjects.chat(event.chat), "message.deleted", data)]


@public_events.register(ReadMarker.Set)
@public_events.register(ReadMarker.Moved)
def _(event: ReadMarker.Set | ReadMarker.Moved) -> list[PublicEvent]:
    """To every member: "seen" ticks, and the reader's other devices."""
    data = {"chat_id": event.chat, "user_id": event.user, "last_read_message_id": event.message}
    return [PublicEvent(subjects.chat(event.chat), "chat.read", data)]


def reaction_out(event: Reaction.Added | Reaction.Readded | Reaction.Removed) -> ReactionOut:
    return ReactionOut(message_id=event.message, chat_id=event.chat, user_id=event.user,
                       emoji=event.emoji)


@public_events.register(Reaction.Added)
@public_events.register(Reaction.Readded)
def _(event: Reaction.Added | Reaction.Readded) -> list[PublicEvent]:
    data = dump(reaction_out(event))
    return [PublicEvent(subjects.chat(event.chat), "message.reaction_added", data)]


@public_events.register
def _(event: Reaction.Removed) -> list[PublicEvent]:
    data = dump(reaction_out(event))
    return [PublicEvent(subjects.chat(event.chat), "message.reaction_removed", data)]


def published_types() -> tuple[type, ...]:
    """The event classes that have a public payload."""
    return tuple(cls for cls in public_events.registry if cls is not object)
