"""Which chats a user belongs to, over log positions, and how membership frames change that.

A chat frame at log position p goes to user u exactly when u was a member at p, i.e. some
interval `joined <= p <= left` (left open while still a member). Intervals come from the
`membership_history` read model at a known position P, and membership frames after P extend
them, so the filter is exact for replayed, buffered and live frames alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from gateway.protocol import Frame
from shared import subjects
from shared.postgres.positions import READMODELS, TRACKING_TABLE

CREATED, ADDED, REMOVED, DELETED = ("chat.created", "chat.member_added", "chat.member_removed",
                                    "chat.deleted")
MEMBERSHIP_EVENTS = frozenset({CREATED, ADDED, REMOVED, DELETED})


@dataclass
class Interval:
    joined: int
    left: int | None = None

    def covers(self, position: int) -> bool:
        return self.joined <= position and (self.left is None or position <= self.left)


def chat_of(frame: Frame) -> int | None:
    """The chat a frame belongs to, from its subject `parley.chat.<id>` (None otherwise)."""
    prefix = f"{subjects.PREFIX}.chat."
    if not frame.subject.startswith(prefix):
        return None
    try:
        return int(frame.subject[len(prefix):])
    except ValueError:
        return None


def joined_users(frame: Frame) -> list[int]:
    if frame.event == CREATED:
        return list(frame.data.get("member_ids", []))
    if frame.event == ADDED:
        return list(frame.data.get("user_ids", []))
    return []


def removed_user(frame: Frame) -> int | None:
    return frame.data.get("user_id") if frame.event == REMOVED else None


@dataclass
class Membership:
    """One user's membership intervals per chat, as of log position `position` and later."""

    user_id: int
    position: int = 0
    chats: dict[int, list[Interval]] = field(default_factory=dict)

    def current(self) -> set[int]:
        return {chat for chat, spans in self.chats.items() if spans and spans[-1].left is None}

    def is_member(self, chat: int) -> bool:
        spans = self.chats.get(chat)
        return spans is not None and bool(spans) and spans[-1].left is None

    def admits(self, frame: Frame) -> bool:
        """Was the user a member of the frame's chat at the frame's position?"""
        chat = chat_of(frame)
        if chat is None:
            return False
        return any(span.covers(frame.position) for span in self.chats.get(chat, ()))

    def apply(self, frame: Frame) -> None:
        """Extend the intervals with a membership frame newer than the snapshot."""
        if frame.event not in MEMBERSHIP_EVENTS or frame.position <= self.position:
            return
        chat = chat_of(frame)
        if chat is None:
            return
        if self.user_id in joined_users(frame) and not self.is_member(chat):
            self.chats.setdefault(chat, []).append(Interval(frame.position))
        elif (frame.event == DELETED or removed_user(frame) == self.user_id) \
                and self.is_member(chat):
            self.chats[chat][-1].left = frame.position


async def load_membership(pool: AsyncConnectionPool, user_id: int) -> Membership:
    """The user's intervals and the read-model position they are exact at (one snapshot)."""
    async with pool.connection() as conn:
        return await _snapshot(conn, user_id)


async def _snapshot(conn: AsyncConnection, user_id: int) -> Membership:
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        # Before the snapshot is taken (at the first query): a rebuild swapping the table in
        # (`parley projections rebuild`) finishes first, so the snapshot sees the new rows.
        await conn.execute("LOCK TABLE membership_history IN ACCESS SHARE MODE")
        cur = await conn.execute(
            f"SELECT notification_id FROM {TRACKING_TABLE} WHERE application_name = %s",
            (READMODELS,))
        row = await cur.fetchone()
        membership = Membership(user_id, position=int(row[0]) if row else 0)
        cur = await conn.execute(
            "SELECT chat_id, joined_position, left_position FROM membership_history"
            " WHERE user_id = %s ORDER BY chat_id, joined_position", (user_id,))
        for chat, joined, left in await cur.fetchall():
            membership.chats.setdefault(chat, []).append(Interval(joined, left))
    return membership
