"""The `chats` and `chat_members` read models: what `GET /chats...` serves."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import singledispatchmethod
from typing import Any, ClassVar

from psycopg import Cursor

from domain.chat import Chat
from domain.message import Message
from projectors.replay import array_literal, copy_rows

CHAT_COLUMNS = (("id", "int8"), ("title", "text"), ("is_group", "bool"), ("creator_id", "int8"),
                ("created_at", "timestamptz"), ("last_activity_at", "timestamptz"),
                ("deleted_at", "timestamptz"), ("position", "int8"))
MEMBER_COLUMNS = (("chat_id", "int8"), ("user_id", "int8"), ("joined_at", "timestamptz"))
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

    @singledispatchmethod
    def apply(self, event: object, curs: Cursor[Any], position: int) -> None:
        """Events this projection does not keep are skipped."""

    @apply.register
    def _(self, event: Chat.Created, curs: Cursor[Any], position: int) -> None:
        curs.execute(
            "INSERT INTO chats (id, title, is_group, creator_id, created_at, last_activity_at,"
            " position) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (event.number, event.title, event.is_group, event.creator, event.timestamp,
             event.timestamp, position))
        self._add_members(curs, event.number, event.members, event)

    @apply.register
    def _(self, event: Chat.Renamed, curs: Cursor[Any], position: int) -> None:
        curs.execute("UPDATE chats SET title = %s, position = %s WHERE id = %s",
                     (event.title, position, event.chat))

    @apply.register
    def _(self, event: Chat.MembersAdded, curs: Cursor[Any], position: int) -> None:
        self._add_members(curs, event.chat, event.user_ids, event)

    @apply.register
    def _(self, event: Chat.MemberRemoved, curs: Cursor[Any], position: int) -> None:
        curs.execute("DELETE FROM chat_members WHERE chat_id = %s AND user_id = %s",
                     (event.chat, event.user_id))

    @apply.register
    def _(self, event: Chat.Deleted, curs: Cursor[Any], position: int) -> None:
        number = event.chat
        curs.execute("UPDATE chats SET deleted_at = %s, position = %s WHERE id = %s",
                     (event.timestamp, position, number))
        curs.execute("DELETE FROM chat_members WHERE chat_id = %s", (number,))

    @apply.register
    def _(self, event: Message.Posted, curs: Cursor[Any], position: int) -> None:
        curs.execute("UPDATE chats SET last_activity_at = %s WHERE id = %s",
                     (event.timestamp, event.chat))

    def apply_batch(self, events: Sequence[tuple[int, object]], curs: Cursor[Any]) -> None:
        """`apply` for a replay, set-based where it matters.

        Chats created in this batch are built in memory (members as ON CONFLICT DO NOTHING
        would leave them) and COPied. Events of older chats run as they come, in one pipeline,
        except posts: they only set `last_activity_at`, so one UPDATE per batch does (the last
        post wins). Exact because a chat's own events follow its `Created` (they are versions
        of one aggregate) and a post needs an existing chat.
        """
        chats: dict[int, list[Any]] = {}
        members: dict[tuple[int, int], datetime] = {}
        activity: dict[int, datetime] = {}
        posted = Message.Posted  # nine events in ten: test it first
        with curs.connection.pipeline():
            for position, event in events:
                if isinstance(event, posted):
                    row = chats.get(event.chat)
                    if row is None:
                        activity[event.chat] = event.timestamp
                    else:
                        row[5] = event.timestamp
                elif isinstance(event, Chat.Created):
                    chats[event.number] = [event.number, event.title, event.is_group,
                                           event.creator, event.timestamp, event.timestamp,
                                           None, position]
                    activity.pop(event.number, None)  # an earlier post found no row
                    for user in event.members:
                        members.setdefault((event.number, user), event.timestamp)
                elif isinstance(event, CHAT_CHANGES) and event.chat in chats:
                    members = self._change_new_chat(chats[event.chat], members, event, position)
                else:
                    self.apply(event, curs, position)
            if activity:
                curs.execute("UPDATE chats c SET last_activity_at = v.ts FROM"
                             " unnest(%s::bigint[], %s::timestamptz[]) AS v(id, ts)"
                             " WHERE c.id = v.id",
                             (array_literal(activity), array_literal(activity.values())))
        if chats:
            copy_rows(curs, "chats", CHAT_COLUMNS, chats.values())
            copy_rows(curs, "chat_members", MEMBER_COLUMNS,
                      [(chat, user, joined) for (chat, user), joined in members.items()])

    @staticmethod
    def _change_new_chat(row: list[Any], members: dict[tuple[int, int], datetime],
                         event: Any, position: int) -> dict[tuple[int, int], datetime]:
        """Apply an event to a chat still in memory; returns the (maybe new) members map."""
        chat = row[0]
        if isinstance(event, Chat.Renamed):
            row[1], row[7] = event.title, position
        elif isinstance(event, Chat.MembersAdded):
            for user in event.user_ids:
                members.setdefault((chat, user), event.timestamp)
        elif isinstance(event, Chat.MemberRemoved):
            members.pop((chat, event.user_id), None)
        elif isinstance(event, Chat.Deleted):
            row[6], row[7] = event.timestamp, position
            members = {key: joined for key, joined in members.items() if key[0] != chat}
        return members

    @staticmethod
    def _add_members(curs: Cursor[Any], chat: int, users: list[int], event: Any) -> None:
        curs.executemany(
            "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            [(chat, user, event.timestamp) for user in users])
