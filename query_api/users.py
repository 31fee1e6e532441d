"""`GET /users/me` and `GET /users/{id}` from the `users` read model (and presence)."""

from __future__ import annotations

from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import Response

from query_api.context import reader
from shared.postgres.presence import OFFLINE, presence_of
from shared.schemas import ProfileOut, UserOut
from shared.web.endpoints import ApiError, int_param, json_response


async def me(request: Request) -> Response:
    ctx, claims = await reader(request)
    async with ctx.pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("SELECT id, email, display_name, avatar_url, created_at FROM users"
                          " WHERE id = %s", (claims.user_id,))
        row = await cur.fetchone()
    if row is None:
        raise ApiError(404, "User not found")
    return json_response(UserOut.model_validate(row))


async def profile(request: Request) -> Response:
    ctx, _ = await reader(request)
    user_id = int_param(request.path_params["user_id"], "user_id")
    async with ctx.pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("SELECT id, display_name, avatar_url FROM users WHERE id = %s",
                          (user_id,))
        row = await cur.fetchone()
        if row is None:
            raise ApiError(404, "User not found")
        seen = (await presence_of(conn, [user_id])).get(user_id, OFFLINE)
    return json_response(ProfileOut(**row, online=seen.online, last_seen_at=seen.last_seen_at))
