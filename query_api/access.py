"""Who may read a chat: 404 for unknown or deleted chats, 403 for non-members."""

from __future__ import annotations

from psycopg import AsyncConnection

from shared.web.endpoints import ApiError


async def check_member(conn: AsyncConnection, chat_id: int, user_id: int) -> None:
    cur = await conn.execute(
        "SELECT c.deleted_at IS NULL, EXISTS (SELECT 1 FROM chat_members m"
        " WHERE m.chat_id = c.id AND m.user_id = %s) FROM chats c WHERE c.id = %s",
        (user_id, chat_id))
    row = await cur.fetchone()
    if row is None or not row[0]:
        raise ApiError(404, "Chat not found")
    if not row[1]:
        raise ApiError(403, "You are not a member of this chat")
