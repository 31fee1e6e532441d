"""The `chats` and `chat_members` read models: what `GET /chats...` serves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from psycopg import Cursor

from domain.chat import Chat
from domain.message import Message
from projectors.base import Events
from projectors.rows import Table, array_literal


@dataclass(slots=True)
class ChatRow:
    """A row of `chats` (a deleted chat keeps its row, with `deleted_at`)."""

    id: int
    title: str | None
    is_group: bool
    creator_id: int
    created_at: datetime
    last_activity_at: datetime
    deleted_at: datetime | None
    position: int


@dataclass(slots=True)
class MemberRow:
    """A row of `chat_members`."""

    chat_id: int
    user_id: int
    joined_at: datetime


CHATS = Table("chats", ChatRow)
CHAT_MEMBERS = Table("chat_members", MemberRow)
Members = dict[tuple[int, int], MemberRow]  # by (chat_id, user_id)
CHAT_CHANGES = (Chat.Renamed, Chat.MembersAdded, Chat.MemberRemoved, Chat.Deleted)


class ChatsProjection:
    """Chats with their last activity, and who is a member since when."""

    name: ClassVar[str] = "chats"
    ddl: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS chats (
            id bigint PRIMARY KEY,
            title text,
            is_group boolean NOT NULL,
            creator_id bigint NOT NULL,
            created_at timestamptz NOT NULL,
            last_activity_at timestamptz NOT NULL,
            deleted_at timestamptz,
            position bigint NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS chat_members (
            chat_id bigint NOT NULL,
            user_id bigint NOT NULL,
            joined_at timestamptz NOT NULL,
            PRIMARY KEY (chat_id, user_id)
        )""",
        "CREATE INDEX IF NOT EXISTS chat_members_by_user ON chat_members (user_id, chat_id)",
    )
    event_types: ClassVar[tuple[type, ...]] = (Chat.Created, *CHAT_CHANGES, Message.Posted)

    def apply(self, events: Events, curs: Cursor[Any]) -> None:
        """Chats created in this batch are built in memory and COPied; older chats change by
        statements sent in one pipeline (one round trip).

        Posts only set `last_activity_at`: one UPDATE per batch does for older chats (the last
        post wins). Exact because a chat's own events follow its `Created` (they are versions
        of one aggregate) and a post needs an existing chat.
        """
        chats: dict[int, ChatRow] = {}
        members: Members = {}
        activity: dict[int, datetime] = {}  # the last post in each older chat
        posted = Message.Posted  # nine events in ten: test it first
        with curs.connection.pipeline():
            for position, event in events:
                if isinstance(event, posted):
                    chat = chats.get(event.chat)
                    if chat is None:
                        activity[event.chat] = event.timestamp
                    else:
                        chat.last_activity_at = event.timestamp
                elif isinstance(event, Chat.Created):
                    chats[event.number] = ChatRow(
                        id=event.number, title=event.title, is_group=event.is_group,
                        creator_id=event.creator, created_at=event.timestamp,
                        last_activity_at=event.timestamp, deleted_at=None, position=position)
                    activity.pop(event.number, None)  # an earlier post found no row
                    _join(members, event.number, event.members, event.timestamp)
                elif isinstance(event, CHAT_CHANGES):
                    chat = chats.get(event.chat)
                    if chat is None:
                        _change_older_chat(curs, event, position)
                    else:
                        members = _change_new_chat(chat, members, event, position)
            if activity:
                curs.execute("UPDATE chats c SET last_activity_at = v.ts FROM"
                             " unnest(%s::bigint[], %s::timestamptz[]) AS v(id, ts)"
                             " WHERE c.id = v.id",
                             (array_literal(activity), array_literal(activity.values())))
        CHATS.copy(curs, chats.values())
        CHAT_MEMBERS.copy(curs, members.values())


def _join(members: Members, chat: int, users: list[int], joined_at: datetime) -> None:
    """Members as `INSERT ... ON CONFLICT DO NOTHING` would leave them: the first join stays."""
    for user in users:
        members.setdefault((chat, user), MemberRow(chat, user, joined_at))


def _change_new_chat(chat: ChatRow, members: Members, event: object, position: int) -> Members:
    """Apply an event to a chat still in memory; returns the (maybe new) members map."""
    if isinstance(event, Chat.Renamed):
        chat.title, chat.position = event.title, position
    elif isinstance(event, Chat.MembersAdded):
        _join(members, chat.id, event.user_ids, event.timestamp)
    elif isinstance(event, Chat.MemberRemoved):
        members.pop((chat.id, event.user_id), None)
    elif isinstance(event, Chat.Deleted):
        chat.deleted_at, chat.position = event.timestamp, position
        members = {key: row for key, row in members.items() if key[0] != chat.id}
    return members


def _change_older_chat(curs: Cursor[Any], event: object, position: int) -> None:
    """Apply an event to a chat created in an earlier batch (its rows are in the tables)."""
    if isinstance(event, Chat.Renamed):
        curs.execute("UPDATE chats SET title = %s, position = %s WHERE id = %s",
                     (event.title, position, event.chat))
    elif isinstance(event, Chat.MembersAdded):
        curs.executemany(
            "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING", [(event.chat, user, event.timestamp)
                                        for user in event.user_ids])
    elif isinstance(event, Chat.MemberRemoved):
        curs.execute("DELETE FROM chat_members WHERE chat_id = %s AND user_id = %s",
                     (event.chat, event.user_id))
    elif isinstance(event, Chat.Deleted):
        curs.execute("UPDATE chats SET deleted_at = %s, position = %s WHERE id = %s",
                     (event.timestamp, position, event.chat))
        curs.execute("DELETE FROM chat_members WHERE chat_id = %s", (event.chat,))
