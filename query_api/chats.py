"""`GET /chats`, `GET /chats/{id}`, `GET /chats/{id}/members` from the chat read models,
with the viewer's read state and each chat's newest message (and each member's presence)."""

from __future__ import annotations

from dataclasses import astuple
from typing import Any

from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import Response

from domain.chat import title_seen_by
from query_api.access import check_member
from query_api.context import reader
from query_api.messages import STORED
from shared.postgres.presence import OFFLINE, presence_of
from shared.postgres.reactions import reactions_of
from shared.schemas import ChatView, MemberOut, MessageOut, ReactionCount
from shared.web.endpoints import int_param, json_response, rows_as

LAST = "last_"  # the prefix of the newest message's columns
# With another member and their name, for a direct chat's title (`title_seen_by`); the
# viewer's read state (`projectors/reads.py`: unread = countable - base); the newest message.
CHAT_COLUMNS = f"""c.id, c.title, other.id AS other_id, other.display_name AS other_name,
    c.is_group, c.created_at, c.creator_id, c.last_activity_at,
    r.last_read_message_id, GREATEST(n.countable - r.base, 0) AS unread_count,
    {", ".join(f"last.{name} AS {LAST}{name}" for name in STORED)}"""
# Each join is a primary-key or index lookup per chat: no count over a chat's messages.
CHAT_JOINS = """LEFT JOIN LATERAL (
        SELECT u.id, u.display_name FROM chat_members o JOIN users u ON u.id = o.user_id
        WHERE o.chat_id = c.id AND o.user_id <> %(viewer)s ORDER BY o.user_id LIMIT 1
    ) other ON NOT c.is_group
    LEFT JOIN chat_reads r ON r.chat_id = c.id AND r.user_id = %(viewer)s
    LEFT JOIN chat_counts n ON n.chat_id = c.id
    LEFT JOIN LATERAL (
        SELECT * FROM messages WHERE chat_id = c.id ORDER BY id DESC LIMIT 1) last ON true"""


def _chat_view(row: dict[str, Any], viewer: int,
               reactions: dict[int, list[ReactionCount]]) -> ChatView:
    other, name = row.pop("other_id"), row.pop("other_name")
    row["title"] = title_seen_by(viewer, row["title"], row["is_group"],
                                 [other] if other is not None else [], {other: name}.get)
    last = {name: row.pop(f"{LAST}{name}") for name in STORED}
    row["last_message"] = MessageOut.model_construct(
        **last, reactions=reactions.get(last["id"], [])) if last["id"] is not None else None
    row["unread_count"] = row["unread_count"] or 0
    return ChatView.model_construct(**row)


async def list_chats(request: Request) -> Response:
    ctx, claims = await reader(request)
    async with ctx.pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            f"SELECT {CHAT_COLUMNS} FROM chat_members m JOIN chats c ON c.id = m.chat_id"
            f" {CHAT_JOINS}"
            " WHERE m.user_id = %(viewer)s AND c.deleted_at IS NULL"
            " ORDER BY c.last_activity_at DESC, c.id DESC", {"viewer": claims.user_id})
        rows = await cur.fetchall()
        reactions = await reactions_of(conn, (row[f"{LAST}id"] for row in rows
                                              if row[f"{LAST}id"] is not None))
    return json_response([_chat_view(row, claims.user_id, reactions) for row in rows])


async def get_chat(request: Request) -> Response:
    ctx, claims = await reader(request)
    chat_id = int_param(request.path_params["chat_id"], "chat_id")
    async with ctx.pool.connection() as conn:
        await check_member(conn, chat_id, claims.user_id)
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(f"SELECT {CHAT_COLUMNS} FROM chats c {CHAT_JOINS}"
                          " WHERE c.id = %(chat)s", {"viewer": claims.user_id, "chat": chat_id})
        row = await cur.fetchone()
        assert row is not None  # a member's chat: check_member found it
        last = row[f"{LAST}id"]
        reactions = await reactions_of(conn, [last] if last is not None else [])
    return json_response(_chat_view(row, claims.user_id, reactions))


async def list_members(request: Request) -> Response:
    ctx, claims = await reader(request)
    chat_id = int_param(request.path_params["chat_id"], "chat_id")
    async with ctx.pool.connection() as conn:
        await check_member(conn, chat_id, claims.user_id)
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT u.id, u.display_name, u.avatar_url, m.joined_at, r.last_read_message_id"
            " FROM chat_members m JOIN users u ON u.id = m.user_id LEFT JOIN chat_reads r"
            " ON r.chat_id = m.chat_id AND r.user_id = m.user_id WHERE m.chat_id = %s"
            " ORDER BY m.joined_at, u.id",
            (chat_id,))
        rows = await cur.fetchall()
        seen = await presence_of(conn, [row["id"] for row in rows])
    for row in rows:
        row["online"], row["last_seen_at"] = astuple(seen.get(row["id"], OFFLINE))
    return json_response(rows_as(MemberOut, rows))
