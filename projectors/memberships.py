"""The `membership_history` read model: who was a member of which chat between which positions.

The gateway resumes a client from a cursor by replaying the stream; an event at log position p
of chat c goes to user u exactly when u was a member at p: `joined <= p <= left` (inclusive at
both ends, so the added user sees its `member_added` and the removed one its `member_removed`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from psycopg import Cursor

from domain.chat import Chat
from projectors.base import Events


class MembershipsProjection:
    """Membership intervals in log positions; `left_position` is NULL while still a member."""

    name: ClassVar[str] = "memberships"
    ddl: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS membership_history (
            chat_id bigint NOT NULL,
            user_id bigint NOT NULL,
            joined_position bigint NOT NULL,
            left_position bigint,
            PRIMARY KEY (chat_id, user_id, joined_position)
        )""",
        "CREATE INDEX IF NOT EXISTS membership_history_by_user"
        " ON membership_history (user_id, left_position)",
    )
    event_types: ClassVar[tuple[type, ...]] = (
        Chat.Created, Chat.MembersAdded, Chat.MemberRemoved, Chat.Deleted)

    def apply(self, events: Events, curs: Cursor[Any]) -> None:
        """The few membership events, one statement each, all in one pipeline (one round trip).

        Statements in log order, not set-wise: a user may join, leave and join again in one
        batch, and each interval ends at its own position.
        """
        with curs.connection.pipeline():
            for position, event in events:
                if isinstance(event, Chat.Created):
                    _join(curs, event.number, event.members, position)
                elif isinstance(event, Chat.MembersAdded):
                    _join(curs, event.chat, event.user_ids, position)
                elif isinstance(event, Chat.MemberRemoved):
                    curs.execute("UPDATE membership_history SET left_position = %s"
                                 " WHERE chat_id = %s AND user_id = %s AND left_position IS NULL",
                                 (position, event.chat, event.user_id))
                elif isinstance(event, Chat.Deleted):
                    curs.execute("UPDATE membership_history SET left_position = %s"
                                 " WHERE chat_id = %s AND left_position IS NULL",
                                 (position, event.chat))


def _join(curs: Cursor[Any], chat: int, users: list[int], position: int) -> None:
    curs.executemany("INSERT INTO membership_history (chat_id, user_id, joined_position)"
                     " VALUES (%s, %s, %s)", [(chat, user, position) for user in users])
