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
from shared.postgres.reactions import revive
from shared.schemas import MessageOut
from shared.web.endpoints import ApiError, int_param, json_response, rows_as

MAX_QUERY = 200  # characters of `q`, stripped
MAX_TERMS = 10  # words of `q`: each one more index scan, all of which must match

WINDOW = 5000  # the newest rows (of the caller's reach) searched by scanning them in order

# Two plans, because PostgreSQL cannot tell a rare prefix from an absent one (it estimates any
# prefix it has no statistics for at 0.5% of the rows): walking the rows newest first and
# testing each is fastest for common words (the page fills within a few hundred rows) and
# slowest for words that occur nowhere (every row is tested: 190 ms for 222,000 rows), while
# the GIN index is the other way round. So the newest WINDOW rows are walked first, and only
# if they hold less than a page is the index asked for the rest (below them). Both keep to
# the caller's chats of now (chat_members) and take the REST rows from `messages`.
MEMBER = "SELECT m.chat_id FROM chat_members m WHERE m.user_id = %(user)s"
IN_CHAT = " AND m.chat_id = %(chat)s"
# The id WINDOW rows back from `before` (NULL: fewer rows than that, the walk covers all).
FLOOR = ("SELECT s.id FROM message_search s WHERE s.id < %(before)s{chat}"
         " ORDER BY s.id DESC OFFSET %(window)s LIMIT 1")
WALK = (f"SELECT {COLUMNS} FROM messages msg WHERE id IN (SELECT s.id FROM message_search s"
        " WHERE s.document @@ %(query)s::tsquery AND s.id < %(before)s AND s.id > %(floor)s"
        " AND s.chat_id IN ({member}) ORDER BY s.id DESC LIMIT %(limit)s) ORDER BY id DESC")
INDEXED = (f"SELECT {COLUMNS} FROM messages msg WHERE id IN (WITH hits AS MATERIALIZED"
           " (SELECT s.id, s.chat_id FROM message_search s WHERE s.document @@ %(query)s::tsquery"
           " AND s.id <= %(floor)s{chat}) SELECT h.id FROM hits h WHERE h.chat_id IN ({member})"
           " ORDER BY h.id DESC LIMIT %(limit)s) ORDER BY id DESC")
PLANS = {in_chat: (FLOOR.format(chat=" AND s.chat_id = %(chat)s" if in_chat else ""),
                   WALK.format(member=MEMBER + (IN_CHAT if in_chat else "")),
                   INDEXED.format(member=MEMBER + (IN_CHAT if in_chat else ""),
                                  chat=" AND s.chat_id = %(chat)s" if in_chat else ""))
         for in_chat in (False, True)}


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
        floor_sql, walk, indexed = PLANS[chat_id is not None]
        args = {"query": query, "before": before, "user": claims.user_id, "chat": chat_id,
                "limit": limit, "window": WINDOW - 1}
        await cur.execute(floor_sql, args)
        found = await cur.fetchone()
        args["floor"] = found["id"] if found else 0
        await cur.execute(walk, args)
        rows = list(await cur.fetchall())
        if len(rows) < limit and args["floor"]:
            args["limit"] = limit - len(rows)
            await cur.execute(indexed, args)
            rows += await cur.fetchall()
    return json_response(rows_as(MessageOut, revive(rows)))
