"""`GET /chats`, `GET /chats/{id}`, `GET /chats/{id}/members` from the chat read models."""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import Response

from query_api.access import check_member
from query_api.context import reader
from shared.schemas import ChatOut, MemberOut, shown_title
from shared.web.endpoints import int_param, json_response, rows_as

# With the other member's name, for a direct chat's title (`shown_title`).
CHAT_COLUMNS = """c.id, c.title, (
        SELECT u.display_name FROM chat_members o JOIN users u ON u.id = o.user_id
        WHERE o.chat_id = c.id AND o.user_id <> %(viewer)s ORDER BY o.user_id LIMIT 1
    ) AS other_name, c.is_group, c.created_at, c.creator_id, c.last_activity_at"""


def _chat_out(row: dict[str, Any]) -> ChatOut:
    other_name = row.pop("other_name")
    row["title"] = shown_title(row["title"], row["is_group"], other_name)
    return ChatOut.model_construct(**row)


async def list_chats(request: Request) -> Response:
    ctx, claims = await reader(request)
    async with ctx.pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            f"SELECT {CHAT_COLUMNS} FROM chat_members m JOIN chats c ON c.id = m.chat_id"
            " WHERE m.user_id = %(viewer)s AND c.deleted_at IS NULL"
            " ORDER BY c.last_activity_at DESC, c.id DESC", {"viewer": claims.user_id})
        rows = await cur.fetchall()
    return json_response([_chat_out(row) for row in rows])


async def get_chat(request: Request) -> Response:
    ctx, claims = await reader(request)
    chat_id = int_param(request.path_params["chat_id"], "chat_id")
    async with ctx.pool.connection() as conn:
        await check_member(conn, chat_id, claims.user_id)
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(f"SELECT {CHAT_COLUMNS} FROM chats c WHERE c.id = %(chat)s",
                          {"viewer": claims.user_id, "chat": chat_id})
        row = await cur.fetchone()
    assert row is not None  # a member's chat: check_member found it
    return json_response(_chat_out(row))


async def list_members(request: Request) -> Response:
    ctx, claims = await reader(request)
    chat_id = int_param(request.path_params["chat_id"], "chat_id")
    async with ctx.pool.connection() as conn:
        await check_member(conn, chat_id, claims.user_id)
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT u.id, u.display_name, u.avatar_url, m.joined_at FROM chat_members m"
            " JOIN users u ON u.id = m.user_id WHERE m.chat_id = %s ORDER BY m.joined_at, u.id",
            (chat_id,))
        rows = await cur.fetchall()
    return json_response(rows_as(MemberOut, rows))
