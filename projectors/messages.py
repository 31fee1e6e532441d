"""The `messages` read model: newest-first pages per chat, index-backed."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any, ClassVar

from psycopg import Cursor
from psycopg.types.json import Jsonb

from domain.chat import Chat
from domain.message import Message


class MessagesProjection:
    """One row per message; a deleted chat's messages go with it."""

    name: ClassVar[str] = "messages"
    ddl: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS messages (
            id bigint PRIMARY KEY,
            chat_id bigint NOT NULL,
            author_id bigint NOT NULL,
            type text NOT NULL,
            content text,
            payload jsonb,
            attachment_id uuid,
            ts timestamptz NOT NULL,
            edited_at timestamptz,
            position bigint NOT NULL
        )""",
        # Paging `WHERE chat_id = ? AND id < ? ORDER BY id DESC LIMIT n` is one index range scan.
        "CREATE INDEX IF NOT EXISTS messages_by_chat ON messages (chat_id, id DESC)",
        "CREATE INDEX IF NOT EXISTS messages_by_attachment ON messages (attachment_id)"
        " WHERE attachment_id IS NOT NULL",
    )

    @singledispatchmethod
    def apply(self, event: object, curs: Cursor[Any], position: int) -> None:
        """Events this projection does not keep are skipped."""

    @apply.register
    def _(self, event: Message.Posted, curs: Cursor[Any], position: int) -> None:
        attachment = (event.payload or {}).get("attachment_id")
        curs.execute(
            "INSERT INTO messages (id, chat_id, author_id, type, content, payload,"
            " attachment_id, ts, position) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (event.number, event.chat, event.author, event.type, event.content,
             Jsonb(event.payload) if event.payload is not None else None, attachment,
             event.timestamp, position))

    @apply.register
    def _(self, event: Message.Edited, curs: Cursor[Any], position: int) -> None:
        curs.execute("UPDATE messages SET content = %s, edited_at = %s, position = %s"
                     " WHERE id = %s", (event.content, event.timestamp, position, event.number))

    @apply.register
    def _(self, event: Chat.Deleted, curs: Cursor[Any], position: int) -> None:
        curs.execute("DELETE FROM messages WHERE chat_id = %s", (event.chat,))

