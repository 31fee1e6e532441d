"""The `messages` read model: newest-first pages per chat, index-backed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import singledispatchmethod
from typing import Any, ClassVar
from uuid import UUID

from psycopg import Cursor
from psycopg.types.json import Jsonb

from domain.chat import Chat
from domain.message import Message
from projectors.replay import copy_rows

COLUMNS = (("id", "int8"), ("chat_id", "int8"), ("author_id", "int8"), ("type", "text"),
           ("content", "text"), ("payload", "jsonb"), ("attachment_id", "uuid"),
           ("ts", "timestamptz"), ("edited_at", "timestamptz"), ("position", "int8"))
INSERT = (f"INSERT INTO messages ({', '.join(name for name, _ in COLUMNS)})"
          f" VALUES ({', '.join(['%s'] * len(COLUMNS))})")


def _row(event: Message.Posted, position: int) -> list[Any]:
    """A new message's row, in COLUMNS order (edited_at is NULL until an edit)."""
    payload = event.payload
    attachment = payload.get("attachment_id") if payload else None
    return [event.number, event.chat, event.author, event.type, event.content,
            Jsonb(payload) if payload is not None else None,
            UUID(attachment) if attachment else None, event.timestamp, None, position]


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
        curs.execute(INSERT, _row(event, position))

    @apply.register
    def _(self, event: Message.Edited, curs: Cursor[Any], position: int) -> None:
        curs.execute("UPDATE messages SET content = %s, edited_at = %s, position = %s"
                     " WHERE id = %s", (event.content, event.timestamp, position, event.number))

    @apply.register
    def _(self, event: Chat.Deleted, curs: Cursor[Any], position: int) -> None:
        curs.execute("DELETE FROM messages WHERE chat_id = %s", (event.chat,))

    def apply_batch(self, events: Sequence[tuple[int, object]], curs: Cursor[Any]) -> None:
        """`apply` for a replay: new rows by COPY; older rows edited and deleted set-wise.

        Rows posted in this batch are edited (or dropped with their chat) in memory before the
        COPY; edits of older rows run before the deletions, which is equivalent in any order
        because an edit of a deleted row changes nothing.
        """
        rows: dict[int, list[Any]] = {}
        edits: dict[int, tuple[str, datetime, int]] = {}  # last edit of each older row
        deleted: list[int] = []
        for position, event in events:
            if isinstance(event, Message.Posted):
                rows[event.number] = _row(event, position)
            elif isinstance(event, Message.Edited):
                row = rows.get(event.number)
                if row is None:
                    edits[event.number] = (event.content, event.timestamp, position)
                else:
                    row[4], row[8], row[9] = event.content, event.timestamp, position
            elif isinstance(event, Chat.Deleted):
                deleted.append(event.chat)
                rows = {number: row for number, row in rows.items() if row[1] != event.chat}
        if edits:
            content, edited_at, positions = zip(*edits.values(), strict=True)
            curs.execute(
                "UPDATE messages m SET content = v.content, edited_at = v.edited_at,"
                " position = v.position FROM unnest(%s::bigint[], %s::text[],"
                " %s::timestamptz[], %s::bigint[]) AS v(id, content, edited_at, position)"
                " WHERE m.id = v.id", (list(edits), list(content), list(edited_at),
                                       list(positions)))
        if deleted:
            curs.execute("DELETE FROM messages WHERE chat_id = ANY(%s)", (deleted,))
        if rows:
            copy_rows(curs, "messages", COLUMNS, rows.values())

