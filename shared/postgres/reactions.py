"""The `reactions` of messages, from the `reactions` read model (projectors/reactions.py).

A message's other fields are columns of `messages`; its reactions are rows of their own (one
per user and emoji), so a page of messages costs one more query, over the page's ids (a
primary-key range per message), whatever its size. The query API and the command API's edit
answer both read them here.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from psycopg import AsyncConnection

from shared.schemas import ReactionCount

# Per message, each emoji with its users in the order they reacted, the emoji in the order of
# their first (still standing) use.
REACTIONS_OF = """SELECT message_id, emoji, count(*), array_agg(user_id ORDER BY position)
    FROM reactions WHERE message_id = ANY(%s)
    GROUP BY message_id, emoji ORDER BY message_id, min(position)"""


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


async def with_reactions(conn: AsyncConnection[Any],
                         rows: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    """`rows` (message rows by column name), each given its `reactions`."""
    found = await reactions_of(conn, (row["id"] for row in rows))
    for row in rows:
        row["reactions"] = found.get(row["id"], [])
    return rows
