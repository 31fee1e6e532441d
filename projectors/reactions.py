"""The `reactions` read model: one row per reaction standing (message, user, emoji)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from psycopg import Cursor

from domain.chat import Chat
from domain.message import Message
from domain.reaction import Reaction
from projectors.base import Events
from projectors.rows import Table


@dataclass(slots=True)
class ReactionRow:
    """A reaction standing; `position` is its (latest) adding, which orders emoji and users."""

    message_id: int
    user_id: int
    emoji: str
    chat_id: int
    position: int


REACTIONS = Table("reactions", ReactionRow)
Key = tuple[int, int, str]  # (message, user, emoji): one aggregate, one row at most


class ReactionsProjection:
    """Rows come and go with their reaction, and go with their message or chat."""

    name: ClassVar[str] = "reactions"
    ddl: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS reactions (
            message_id bigint NOT NULL,
            user_id bigint NOT NULL,
            emoji text NOT NULL,
            chat_id bigint NOT NULL,
            position bigint NOT NULL,
            PRIMARY KEY (message_id, user_id, emoji)
        )""",
        # a deleted chat's reactions go at once (`WHERE chat_id = ANY(...)`)
        "CREATE INDEX IF NOT EXISTS reactions_by_chat ON reactions (chat_id)",
    )
    event_types: ClassVar[tuple[type, ...]] = (Reaction.Added, Reaction.Removed,
                                               Reaction.Readded, Message.Deleted, Chat.Deleted)

    def apply(self, events: Events, curs: Cursor[Any]) -> None:
        """The batch's outcome per key in memory (a row, or None for gone), then set-wise:
        older rows of keys the batch touched are deleted, then those of deleted messages and
        chats, then the rows standing at the batch's end are COPied.

        No reaction event follows its message's or chat's deletion (the command names both
        as read), so dropping rows of a deletion from memory as it comes is enough.
        """
        rows: dict[Key, ReactionRow | None] = {}
        older: list[Key] = []  # keys that may have a row from an earlier batch
        messages: list[int] = []
        chats: list[int] = []
        for position, event in events:
            if isinstance(event, (Reaction.Added, Reaction.Readded, Reaction.Removed)):
                key = (event.message, event.user, event.emoji)
                if not isinstance(event, Reaction.Added) and key not in rows:
                    older.append(key)
                rows[key] = None if isinstance(event, Reaction.Removed) else ReactionRow(
                    message_id=event.message, user_id=event.user, emoji=event.emoji,
                    chat_id=event.chat, position=position)
            elif isinstance(event, Message.Deleted):
                messages.append(event.number)
                rows = {k: r for k, r in rows.items() if k[0] != event.number}
            elif isinstance(event, Chat.Deleted):
                chats.append(event.chat)
                rows = {k: r for k, r in rows.items() if r is None or r.chat_id != event.chat}
        if older:
            curs.execute(
                "DELETE FROM reactions r USING unnest(%s::bigint[], %s::bigint[], %s::text[])"
                " AS v(message_id, user_id, emoji) WHERE r.message_id = v.message_id"
                " AND r.user_id = v.user_id AND r.emoji = v.emoji",
                ([k[0] for k in older], [k[1] for k in older], [k[2] for k in older]))
        if messages:
            curs.execute("DELETE FROM reactions WHERE message_id = ANY(%s)", (messages,))
        if chats:
            curs.execute("DELETE FROM reactions WHERE chat_id = ANY(%s)", (chats,))
        REACTIONS.copy(curs, (row for row in rows.values() if row is not None))
