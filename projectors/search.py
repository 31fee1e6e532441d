"""The `message_search` read model: the words of every text message, for `GET /search/messages`.

One row per text message: its chat and a `document` tsvector of its words
(`domain/search.py` cuts them; PostgreSQL only stores and matches them). A GIN index answers
`document @@ 'hel':* & 'wor':*`; the query API joins the hits with `chat_members` at query
time, so a member who leaves stops finding the chat's messages, and with `messages` for the REST
shape. Voice and system messages have no row (a system message is the server's notice, not
something said). An edit replaces the document; a deleted message, or a deleted chat's
messages, lose their rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from psycopg import Cursor

from domain.chat import Chat
from domain.message import TEXT, Message
from domain.search import document
from projectors.base import Events


@dataclass(slots=True)
class SearchRow:
    """A row of `message_search` (`document` as a tsvector literal)."""

    id: int
    chat_id: int
    document: str
    position: int


class SearchProjection:
    """The words of each text message, GIN-indexed."""

    name: ClassVar[str] = "search"
    ddl: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS message_search (
            id bigint PRIMARY KEY,
            chat_id bigint NOT NULL,
            document tsvector NOT NULL,
            position bigint NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS message_search_words ON message_search USING gin (document)",
        # A search in one chat pages it newest first; deleting a chat finds its rows.
        "CREATE INDEX IF NOT EXISTS message_search_by_chat ON message_search (chat_id, id DESC)",
    )
    event_types: ClassVar[tuple[type, ...]] = (Message.Posted, Message.Edited, Message.Deleted,
                                               Chat.Deleted)

    def apply(self, events: Events, curs: Cursor[Any]) -> None:
        """New rows in memory (edited or dropped there while the batch goes on), one INSERT;
        older rows: one UPDATE for edits, then one DELETE each for messages and chats.

        Every text message has a row, even one whose words were all punctuation (an empty
        document matches nothing), so that an edit always has a row to change and never needs
        the message's chat from elsewhere. Deletions run after the edits: an edit of a deleted
        message never comes (the domain refuses it), so the order is equivalent.
        """
        rows: dict[int, SearchRow] = {}
        edits: dict[int, tuple[str, int]] = {}  # the last edit of each older message
        gone: list[int] = []
        deleted: list[int] = []
        for position, event in events:
            if isinstance(event, Message.Posted):
                if event.type == TEXT and event.content is not None:
                    rows[event.number] = SearchRow(event.number, event.chat,
                                                   document(event.content), position)
            elif isinstance(event, Message.Edited):
                # An erased edit (`parley erase-message`) has no content: its message is
                # deleted, so the row goes anyway; until then it has no words.
                words = document(event.content or "")
                row = rows.get(event.number)
                if row is None:
                    edits[event.number] = (words, position)
                else:
                    row.document, row.position = words, position
            elif isinstance(event, Message.Deleted):
                if rows.pop(event.number, None) is None:
                    gone.append(event.number)
            elif isinstance(event, Chat.Deleted):
                deleted.append(event.chat)
                rows = {n: row for n, row in rows.items() if row.chat_id != event.chat}
        if edits:
            curs.execute(
                "UPDATE message_search s SET document = v.document, position = v.position"
                " FROM unnest(%s::bigint[], %s::tsvector[], %s::bigint[])"
                " AS v(id, document, position) WHERE s.id = v.id",
                (list(edits), [d for d, _ in edits.values()], [p for _, p in edits.values()]))
        if gone:
            curs.execute("DELETE FROM message_search WHERE id = ANY(%s)", (gone,))
        if deleted:
            curs.execute("DELETE FROM message_search WHERE chat_id = ANY(%s)", (deleted,))
        if rows:
            new = list(rows.values())
            curs.execute(
                "INSERT INTO message_search (id, chat_id, document, position)"
                " SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::tsvector[], %s::bigint[])",
                ([r.id for r in new], [r.chat_id for r in new], [r.document for r in new],
                 [r.position for r in new]))
