"""`GET /messages?chat_id=&before_id=&limit=` (newest first) and `GET /messages/{id}`."""

from __future__ import annotations

from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import Response

from query_api.access import check_member
from query_api.context import reader
from shared.schemas import MessageOut
from shared.web.endpoints import ApiError, int_param, json_response, rows_as

DEFAULT_PAGE, MAX_PAGE = 50, 100
# The read model names its columns after MessageOut's fields: a new field is a new column.
COLUMNS = ", ".join(MessageOut.model_fields)


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    return min(int_param(raw, "limit"), MAX_PAGE)


async def list_messages(request: Request) -> Response:
    ctx, claims = await reader(request)
    params = request.query_params
    if "chat_id" not in params:
        raise ApiError(400, "chat_id is required")
    chat_id = int_param(params["chat_id"], "chat_id")
    before = int_param(params["before_id"], "before_id") if "before_id" in params else None
    limit = _limit(params.get("limit"))
    async with ctx.pool.connection() as conn:
        await check_member(conn, chat_id, claims.user_id)
        cur = conn.cursor(row_factory=dict_row)
        # One range scan of messages_by_chat (chat_id, id DESC), however long the chat.
        await cur.execute(
            f"SELECT {COLUMNS} FROM messages WHERE chat_id = %s AND id < %s"
            " ORDER BY id DESC LIMIT %s", (chat_id, before or 2**63 - 1, limit))
        rows = await cur.fetchall()
    return json_response(rows_as(MessageOut, rows))


async def get_message(request: Request) -> Response:
    ctx, claims = await reader(request)
    message_id = int_param(request.path_params["message_id"], "message_id")
    async with ctx.pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            f"SELECT {COLUMNS} FROM messages msg WHERE id = %s AND EXISTS (SELECT 1"
            " FROM chat_members m WHERE m.chat_id = msg.chat_id AND m.user_id = %s)",
            (message_id, claims.user_id))
        row = await cur.fetchone()
    if row is None:
        raise ApiError(404, "Message not found")
    return json_response(MessageOut.model_validate(row))
