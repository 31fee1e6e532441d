"""The `messages` read model: newest-first pages per chat, index-backed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from psycopg import Cursor
from psycopg.types.json import Jsonb

from domain.chat import Chat
from domain.message import Message
from projectors.base import Events
from projectors.rows import Table


@dataclass(slots=True)
class MessageRow:
    """A row of `messages` (`edited_at` is NULL until an edit)."""

    id: int
    chat_id: int
    author_id: int
    type: str
    content: str | None
    payload: Jsonb | None
    attachment_id: UUID | None
    ts: datetime
    edited_at: datetime | None
    position: int
    reply_to_id: int | None


@dataclass(slots=True)
class Edit:
    """The last edit in a batch of a message posted before it."""

    content: str
    edited_at: datetime
    position: int


MESSAGES = Table("messages", MessageRow)


def posted_row(event: Message.Posted, position: int) -> MessageRow:
    payload = event.payload
    attachment = payload.get("attachment_id") if payload else None
    return MessageRow(id=event.number, chat_id=event.chat, author_id=event.author,
                      type=event.type, content=event.content,
                      payload=Jsonb(payload) if payload is not None else None,
                      attachment_id=UUID(attachment) if attachment else None,
                      ts=event.timestamp, edited_at=None, position=position,
                      reply_to_id=event.reply_to)


class MessagesProjection:
    """One row per message; a deleted message, or a deleted chat's messages, go."""

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
            position bigint NOT NULL,
            reply_to_id bigint
        )""",
        # Tables created before replies existed: no message was a reply then, so NULL is right.
        "ALTER TABLE messages ADD COLUMN IF NOT EXISTS reply_to_id bigint",
        # Paging `WHERE chat_id = ? AND id < ? ORDER BY id DESC LIMIT n` is one index range scan.
        "CREATE INDEX IF NOT EXISTS messages_by_chat ON messages (chat_id, id DESC)",
        "CREATE INDEX IF NOT EXISTS messages_by_attachment ON messages (attachment_id)"
        " WHERE attachment_id IS NOT NULL",
    )
    event_types: ClassVar[tuple[type, ...]] = (Message.Posted, Message.Edited, Message.Deleted,
                                               Chat.Deleted)

    def apply(self, events: Events, curs: Cursor[Any]) -> None:
        """New rows by COPY; older rows edited and deleted set-wise.

        Rows posted in this batch are edited (or dropped, alone or with their chat) in memory
        before the COPY; edits of older rows run before the deletions, which is equivalent in
        any order because an edit of a deleted row changes nothing (and none follows a
        message's own deletion: the domain refuses it).
        """
        rows: dict[int, MessageRow] = {}
        edits: dict[int, Edit] = {}  # the last edit of each older row
        deleted: list[int] = []  # chats
        gone: list[int] = []  # older messages deleted one by one
        for position, event in events:
            if isinstance(event, Message.Posted):
                rows[event.number] = posted_row(event, position)
            elif isinstance(event, Message.Edited):
                row = rows.get(event.number)
                if row is None:
                    edits[event.number] = Edit(event.content, event.timestamp, position)
                else:
                    row.content, row.edited_at = event.content, event.timestamp
                    row.position = position
            elif isinstance(event, Message.Deleted):
                if rows.pop(event.number, None) is None:
                    gone.append(event.number)
            elif isinstance(event, Chat.Deleted):
                deleted.append(event.chat)
                rows = {number: row for number, row in rows.items() if row.chat_id != event.chat}
        if edits:
            curs.execute(
                "UPDATE messages m SET content = v.content, edited_at = v.edited_at,"
                " position = v.position FROM unnest(%s::bigint[], %s::text[],"
                " %s::timestamptz[], %s::bigint[]) AS v(id, content, edited_at, position)"
                " WHERE m.id = v.id",
                (list(edits), [e.content for e in edits.values()],
                 [e.edited_at for e in edits.values()], [e.position for e in edits.values()]))
        if deleted:
            curs.execute("DELETE FROM messages WHERE chat_id = ANY(%s)", (deleted,))
        if gone:
            curs.execute("DELETE FROM messages WHERE id = ANY(%s)", (gone,))
        MESSAGES.copy(curs, rows.values())
