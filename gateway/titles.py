"""A direct chat's title in its live `chat.created` frame, per viewer, as `GET /chats` shows it.

A direct chat has no title of its own: each member sees the other's display name
(`domain.chat.title_seen_by`). The event, and so the published payload, names only the member
ids, and one payload goes to both members; the gateway renders the frame once per member here,
before it is dispatched or replayed. Display names never change once registered, so they are
kept in a bounded cache.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import psycopg
from psycopg_pool import AsyncConnectionPool

from domain.chat import title_seen_by
from gateway.protocol import Frame

log = logging.getLogger("parley.gateway")
CHAT_CREATED = "chat.created"
NAMES_KEPT = 100_000


class DirectChatTitles:
    """Fills in the title of a direct chat's `chat.created` for each of its two members."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self._names: OrderedDict[int, str] = OrderedDict()

    async def render(self, frame: Frame) -> Frame:
        """`frame` with a text per member if it creates a direct chat, else `frame` itself."""
        data = frame.data
        if frame.event != CHAT_CREATED or data.get("is_group") is not False or \
                data.get("title") is not None:
            return frame
        members = [m for m in data.get("member_ids") or () if type(m) is int]
        try:
            names = await self._names_of(members)
        except psycopg.Error as exc:  # the frame still goes out, with the title left null
            log.warning("no names for direct chat %s: %s", data.get("id"), exc)
            return frame
        return frame.for_viewers({
            viewer: {**data, "title": title_seen_by(viewer, None, False, members, names.get)}
            for viewer in members})

    async def _names_of(self, users: list[int]) -> dict[int, str]:
        missing = [u for u in users if u not in self._names]
        if missing:
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT id, display_name FROM users WHERE id = ANY(%s)", (missing,))
                for user, name in await cur.fetchall():
                    self._names[user] = name
            while len(self._names) > NAMES_KEPT:
                self._names.popitem(last=False)
        return {u: self._names[u] for u in users if u in self._names}
