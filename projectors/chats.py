"""The `chats` and `chat_members` read models: what `GET /chats...` serves."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any, ClassVar

from psycopg import Cursor

from domain.chat import Chat
from domain.message import Message


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

    @staticmethod
    def _add_members(curs: Cursor[Any], chat: int, users: list[int], event: Any) -> None:
        curs.executemany(
            "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            [(chat, user, event.timestamp) for user in users])
