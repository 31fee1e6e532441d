"""`GET /attachments/{id}`: a short-lived download URL for the uploader and chat members."""

from __future__ import annotations

from uuid import UUID

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from query_api.context import reader
from shared.schemas import AttachmentDownload
from shared.web.endpoints import ApiError, json_response


async def get_attachment(request: Request) -> Response:
    ctx, claims = await reader(request)
    try:
        attachment_id = UUID(request.path_params["attachment_id"])
    except ValueError:
        raise ApiError(400, "attachment_id must be a UUID") from None
    async with ctx.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT a.object_key FROM attachments a WHERE a.id = %(id)s AND ("
            " a.owner_id = %(user)s OR EXISTS (SELECT 1 FROM messages msg"
            " JOIN chat_members m ON m.chat_id = msg.chat_id"
            " WHERE msg.attachment_id = a.id AND m.user_id = %(user)s))",
            {"id": attachment_id, "user": claims.user_id})
        row = await cur.fetchone()
    if row is None or ctx.storage is None:
        raise ApiError(404, "Attachment not found")
    url, expires_at = await run_in_threadpool(ctx.storage.presign_download, row[0])
    return json_response(AttachmentDownload(url=url, expires_at=expires_at))
