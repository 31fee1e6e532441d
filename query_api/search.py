"""`GET /search/messages?q=[&chat_id=][&before_id=][&limit=]`: the caller's messages by words."""

from __future__ import annotations

from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import Response

from domain.search import prefix_query, words
from query_api.access import check_member
from query_api.context import reader
from query_api.messages import COLUMNS, DEFAULT_PAGE, MAX_PAGE
from shared.openapi.types import MAX_ID
from shared.schemas import MessageOut
from shared.web.endpoints import ApiError, int_param, json_response, rows_as

MAX_QUERY = 200  # characters of `q`, stripped
MAX_TERMS = 10  # words of `q`: each one more index scan, all of which must match

# The newest `limit` hits of the caller's chats (membership now, from chat_members), then their
# REST rows from `messages` (one statement: the ids never leave the database).
def _search(in_chat: str) -> str:
    return (f"SELECT {COLUMNS} FROM messages WHERE id IN (SELECT s.id FROM message_search s"
            " WHERE s.document @@ %(query)s::tsquery AND s.id < %(before)s AND s.chat_id IN"
            f" (SELECT m.chat_id FROM chat_members m WHERE m.user_id = %(user)s{in_chat})"
            " ORDER BY s.id DESC LIMIT %(limit)s) ORDER BY id DESC")


SEARCH, SEARCH_CHAT = _search(""), _search(" AND m.chat_id = %(chat)s")


def terms(raw: str | None) -> list[str]:
    """The words of `q`, or 400: 1..200 characters once stripped, 1..10 words."""
    text = (raw or "").strip()
    if not text:
        raise ApiError(400, "q is required: the words to search for")
    if len(text) > MAX_QUERY:
        raise ApiError(400, f"q must be at most {MAX_QUERY} characters")
    found = words(text)
    if not found:
        raise ApiError(400, "q must contain a word (letters or digits)")
    if len(found) > MAX_TERMS:
        raise ApiError(400, f"q must have at most {MAX_TERMS} words")
    return found


async def search_messages(request: Request) -> Response:
    """Messages of the caller's chats with every word of `q` as a word prefix, newest first."""
    ctx, claims = await reader(request)
    params = request.query_params
    query = prefix_query(terms(params.get("q")))
    chat_id = int_param(params["chat_id"], "chat_id") if "chat_id" in params else None
    before = int_param(params["before_id"], "before_id") if "before_id" in params else MAX_ID
    limit = min(int_param(params["limit"], "limit"), MAX_PAGE) if "limit" in params \
        else DEFAULT_PAGE
    async with ctx.pool.connection() as conn:
        if chat_id is not None:
            await check_member(conn, chat_id, claims.user_id)
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(SEARCH if chat_id is None else SEARCH_CHAT,
                          {"query": query, "before": before, "user": claims.user_id,
                           "chat": chat_id, "limit": limit})
        rows = list(await cur.fetchall())
    return json_response(rows_as(MessageOut, rows))
