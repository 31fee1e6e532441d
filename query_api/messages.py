"""`GET /messages?chat_id=[&before_id=|&after_id=|&around_id=][&limit=]` (pages, newest first)
and `GET /messages/{id}`."""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import Response

from query_api.access import check_member
from query_api.context import reader
from shared.openapi.types import MAX_ID
from shared.postgres.reactions import REACTIONS_COLUMN, revive
from shared.schemas import MessageOut
from shared.web.endpoints import ApiError, int_param, json_response, rows_as

DEFAULT_PAGE, MAX_PAGE = 50, 100
# The read model names its columns after MessageOut's fields: a new field is a new column;
# but `reactions`, rows of their own (`shared/postgres/reactions.py`), a subquery per row.
STORED = tuple(name for name in MessageOut.model_fields if name != "reactions")
COLUMNS = ", ".join([*(f"msg.{name}" for name in STORED), REACTIONS_COLUMN])


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    return min(int_param(raw, "limit"), MAX_PAGE)


PAGE_ANCHORS = ("before_id", "after_id", "around_id")


async def list_messages(request: Request) -> Response:
    """A page of a chat, newest first: the newest, `before_id`, `after_id` or `around_id`."""
    ctx, claims = await reader(request)
    params = request.query_params
    if "chat_id" not in params:
        raise ApiError(400, "chat_id is required")
    chat_id = int_param(params["chat_id"], "chat_id")
    anchors = [name for name in PAGE_ANCHORS if name in params]
    if len(anchors) > 1:
        raise ApiError(400, "At most one of before_id, after_id and around_id")
    anchor = anchors[0] if anchors else None
    at = int_param(params[anchor], anchor) if anchor else None
    limit = _limit(params.get("limit"))
    async with ctx.pool.connection() as conn:
        await check_member(conn, chat_id, claims.user_id)
        cur = conn.cursor(row_factory=dict_row)
        if anchor == "after_id":
            rows = list(reversed(await _after(cur, chat_id, at or 0, limit)))
        elif anchor == "around_id":
            rows = await _around(cur, chat_id, at or 0, limit)
        else:
            rows = await _before(cur, chat_id, at or MAX_ID, limit)
    return json_response(rows_as(MessageOut, rows))


# Each is one range scan of messages_by_chat (chat_id, id DESC), however long the chat.
async def _before(cur: Any, chat_id: int, before: int, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` messages with ids below `before`, newest first."""
    await cur.execute(f"SELECT {COLUMNS} FROM messages msg WHERE chat_id = %s AND id < %s"
                      " ORDER BY id DESC LIMIT %s", (chat_id, before, limit))
    return revive(await cur.fetchall())


async def _after(cur: Any, chat_id: int, after: int, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` messages with ids above `after`, *oldest* first."""
    await cur.execute(f"SELECT {COLUMNS} FROM messages msg WHERE chat_id = %s AND id > %s"
                      " ORDER BY id LIMIT %s", (chat_id, after, limit))
    return revive(await cur.fetchall())


async def _around(cur: Any, chat_id: int, at: int, limit: int) -> list[dict[str, Any]]:
    """At most `limit` messages nearest to `at`, newest first: `at` itself if it is there, and
    the rest split evenly before and after it (more on one side where the other runs out).
    `at` need not exist (a deleted message, say): the page is still the one around it."""
    older = await _before(cur, chat_id, min(at + 1, MAX_ID), limit)  # `at` first, if there
    newer = await _after(cur, chat_id, at, limit)
    take_newer = min(len(newer), max((limit - 1) // 2, limit - len(older)))
    take_older = min(len(older), limit - take_newer)
    return [*reversed(newer[:take_newer]), *older[:take_older]]


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
    revive([row])
    return json_response(MessageOut.model_validate(row))
