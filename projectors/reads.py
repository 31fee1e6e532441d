"""The `chat_reads` read model: each member's read marker and unread count, per chat.

`unread_count` is the number of text and voice messages by others after the member's marker
(system and deleted messages do not count). Counting them for every `GET /chats` would cost a
scan per chat; keeping a count per member would cost a write per member for every post (a
500-member group: 500 rows per message). Instead each chat keeps how many countable messages
it has (`chat_counts.countable`) and each member a `base`, such that

    unread_count = chat_counts.countable - chat_reads.base

so a post writes two rows whatever the chat's size: its chat's count, and its author's marker
(posting moves the author's marker to the new message: `base` becomes the new count). Moving a
marker, joining, or deleting a message counts the messages involved once, when it happens, in
`countable_messages` (this read model's own list of the messages that count).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from psycopg import Cursor

from domain.chat import Chat
from domain.message import SYSTEM, Message
from domain.read_marker import ReadMarker
from projectors.base import Events
from projectors.rows import Table


@dataclass(slots=True)
class CountableRow:
    """A message that counts as unread for the others until they read past it."""

    id: int
    chat_id: int
    author_id: int
    position: int


COUNTABLE = Table("countable_messages", CountableRow)


@dataclass(slots=True)
class AuthorMove:
    """An author's last post in a run of posts: their marker moves to it."""

    message: int
    count: int  # countable messages of the chat posted in the run up to this one
    position: int


@dataclass(slots=True)
class ChatRun:
    """What a run of consecutive posts does to one chat."""

    added: int = 0  # countable messages
    position: int = 0
    authors: dict[int, AuthorMove] = field(default_factory=dict)


class ReadsProjection:
    """Read markers, unread counts, and the countable messages they are counted from."""

    name: ClassVar[str] = "reads"
    ddl: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS chat_counts (
            chat_id bigint PRIMARY KEY,
            countable bigint NOT NULL,
            position bigint NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS chat_reads (
            chat_id bigint NOT NULL,
            user_id bigint NOT NULL,
            last_read_message_id bigint,
            base bigint NOT NULL,
            position bigint NOT NULL,
            PRIMARY KEY (chat_id, user_id)
        )""",
        """CREATE TABLE IF NOT EXISTS countable_messages (
            id bigint PRIMARY KEY,
            chat_id bigint NOT NULL,
            author_id bigint NOT NULL,
            position bigint NOT NULL
        )""",
        # Counting a chat's messages after a marker is one index range scan.
        "CREATE INDEX IF NOT EXISTS countable_messages_by_chat"
        " ON countable_messages (chat_id, id)",
    )
    event_types: ClassVar[tuple[type, ...]] = (
        Chat.Created, Chat.MembersAdded, Chat.MemberRemoved, Chat.Deleted,
        Message.Posted, Message.Deleted, ReadMarker.Set, ReadMarker.Moved)

    def apply(self, events: Events, curs: Cursor[Any]) -> None:
        """Runs of posts (nine events in ten) are applied set-wise, each other event by itself
        in log order after the run before it: every statement below sees the rows of all the
        events before its own."""
        run: dict[int, ChatRun] = {}
        countable: list[CountableRow] = []
        for position, event in events:
            if isinstance(event, Message.Posted):
                chat = run.setdefault(event.chat, ChatRun())
                chat.position = position
                if event.type != SYSTEM:
                    chat.added += 1
                    countable.append(CountableRow(event.number, event.chat, event.author,
                                                  position))
                chat.authors[event.author] = AuthorMove(event.number, chat.added, position)
                continue
            self._flush(curs, run, countable)
            run, countable = {}, []
            self._apply_one(curs, position, event)
        self._flush(curs, run, countable)

    @staticmethod
    def _flush(curs: Cursor[Any], run: dict[int, ChatRun], countable: list[CountableRow]) -> None:
        if not run:
            return
        COUNTABLE.copy(curs, countable)
        moves = [(chat, author, move) for chat, changes in run.items()
                 for author, move in changes.authors.items()]
        # Each author's marker moves to their last post: nothing by others before it is
        # unread, so `base` is the chat's count at that post (the count before the run, here
        # still in chat_counts, plus the run's own up to it).
        curs.execute(
            "UPDATE chat_reads r SET last_read_message_id = v.message,"
            " base = c.countable + v.count, position = v.position"
            " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],"
            " %s::bigint[]) AS v(chat_id, user_id, message, count, position), chat_counts c"
            " WHERE c.chat_id = v.chat_id AND r.chat_id = v.chat_id AND r.user_id = v.user_id",
            ([chat for chat, _, _ in moves], [author for _, author, _ in moves],
             [move.message for _, _, move in moves], [move.count for _, _, move in moves],
             [move.position for _, _, move in moves]))
        added = [(chat, changes) for chat, changes in run.items() if changes.added]
        if added:
            curs.execute(
                "UPDATE chat_counts c SET countable = c.countable + v.added,"
                " position = v.position FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[])"
                " AS v(chat_id, added, position) WHERE c.chat_id = v.chat_id",
                ([chat for chat, _ in added], [changes.added for _, changes in added],
                 [changes.position for _, changes in added]))

    @staticmethod
    def _apply_one(curs: Cursor[Any], position: int, event: object) -> None:
        if isinstance(event, Chat.Created):
            curs.execute("INSERT INTO chat_counts (chat_id, countable, position)"
                         " VALUES (%s, 0, %s)", (event.number, position))
            curs.execute(
                "INSERT INTO chat_reads (chat_id, user_id, last_read_message_id, base, position)"
                " SELECT %s, u, NULL, 0, %s FROM unnest(%s::bigint[]) AS u"
                " ON CONFLICT DO NOTHING", (event.number, position, event.members))
        elif isinstance(event, Chat.MembersAdded):
            # No marker yet: every countable message by others is unread.
            curs.execute(
                "INSERT INTO chat_reads (chat_id, user_id, last_read_message_id, base, position)"
                " SELECT c.chat_id, u, NULL, c.countable - (SELECT count(*)"
                " FROM countable_messages m WHERE m.chat_id = c.chat_id AND m.author_id <> u),"
                " %s FROM chat_counts c, unnest(%s::bigint[]) AS u WHERE c.chat_id = %s"
                " ON CONFLICT DO NOTHING", (position, event.user_ids, event.chat))
        elif isinstance(event, Chat.MemberRemoved):
            curs.execute("DELETE FROM chat_reads WHERE chat_id = %s AND user_id = %s",
                         (event.chat, event.user_id))
        elif isinstance(event, Chat.Deleted):
            for table in ("chat_reads", "countable_messages", "chat_counts"):
                curs.execute(f"DELETE FROM {table} WHERE chat_id = %s", (event.chat,))
        elif isinstance(event, Message.Deleted):
            # One fewer countable message; whoever had read it (or wrote it) keeps their count.
            curs.execute(
                "WITH gone AS (DELETE FROM countable_messages WHERE id = %(id)s"
                " RETURNING chat_id, author_id),"
                " readers AS (UPDATE chat_reads r SET base = r.base - 1, position = %(pos)s"
                " FROM gone g WHERE r.chat_id = g.chat_id AND (r.user_id = g.author_id"
                " OR r.last_read_message_id >= %(id)s))"
                " UPDATE chat_counts c SET countable = c.countable - 1, position = %(pos)s"
                " FROM gone g WHERE c.chat_id = g.chat_id", {"id": event.number, "pos": position})
        elif isinstance(event, (ReadMarker.Set, ReadMarker.Moved)):
            # Forward only: a post of the member's own may have moved it further already.
            curs.execute(
                "UPDATE chat_reads r SET last_read_message_id = %(message)s,"
                " base = c.countable - (SELECT count(*) FROM countable_messages m"
                " WHERE m.chat_id = r.chat_id AND m.id > %(message)s"
                " AND m.author_id <> r.user_id), position = %(pos)s"
                " FROM chat_counts c WHERE c.chat_id = r.chat_id AND r.chat_id = %(chat)s"
                " AND r.user_id = %(user)s AND (r.last_read_message_id IS NULL"
                " OR r.last_read_message_id < %(message)s)",
                {"message": event.message, "chat": event.chat, "user": event.user,
                 "pos": position})
