"""The `reactions` of messages, from the `reactions` read model (projectors/reactions.py).

A message's other fields are columns of `messages`; its reactions are rows of their own (one
per user and emoji): a primary-key range per message. A page of messages selects them as one
more column (`REACTIONS_COLUMN`, a subquery per row of the page: no second round trip, which
cost a page 15-25% of its rate); a list of chats (their newest messages) and the command
API's edit answer ask `reactions_of` in one more query.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any, TypeVar

from psycopg import AsyncConnection

from shared.schemas import ReactionCount

R = TypeVar("R", bound=MutableMapping[str, Any])

# Per message, each emoji with its users in the order they reacted, the emoji in the order of
# their first (still standing) use.
REACTIONS_OF = """SELECT message_id, emoji, count(*), array_agg(user_id ORDER BY position)
    FROM reactions WHERE message_id = ANY(%s)
    GROUP BY message_id, emoji ORDER BY message_id, min(position)"""


# The reactions of the message `msg` as one jsonb array, NULL without any: `revive` reads it.
REACTIONS_COLUMN = """(SELECT jsonb_agg(jsonb_build_object('emoji', emoji, 'count', n,
        'user_ids', users) ORDER BY first)
    FROM (SELECT emoji, count(*) AS n, array_agg(user_id ORDER BY position) AS users,
            min(position) AS first
        FROM reactions WHERE reactions.message_id = msg.id GROUP BY emoji) e) AS reactions"""


def revive(rows: list[R]) -> list[R]:
    """Rows selected with `REACTIONS_COLUMN`, their `reactions` as payload models."""
    for row in rows:
        found = row["reactions"]
        row["reactions"] = [ReactionCount.model_construct(**r) for r in found] if found else []
    return rows


async def reactions_of(conn: AsyncConnection[Any],
                       message_ids: Iterable[int]) -> dict[int, list[ReactionCount]]:
    """Each message's reactions (a message without any is absent)."""
    ids = list(message_ids)
    found: dict[int, list[ReactionCount]] = {}
    if not ids:
        return found
    cur = await conn.execute(REACTIONS_OF, (ids,))
    for message_id, emoji, count, user_ids in await cur.fetchall():
        found.setdefault(message_id, []).append(
            ReactionCount.model_construct(emoji=emoji, count=count, user_ids=user_ids))
    return found
