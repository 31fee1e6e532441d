"""`POST /attachments`: a presigned POST for one voice upload, straight to object storage."""

from __future__ import annotations

import uuid

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from command_api.context import context
from shared.s3.storage import (
    UploadRefusedError,
    content_type_allowed,
    normalize_content_type,
    object_key,
    safe_filename,
)
from shared.schemas import AttachmentCreate, AttachmentUpload
from shared.web.endpoints import ApiError


async def create_attachment(request: Request) -> Response:
    ctx = context(request)
    owner, claim, body = await ctx.caller(request, AttachmentCreate)
    content_type = normalize_content_type(body.content_type)
    if content_type is None or not content_type_allowed(
            content_type, ctx.settings.upload_content_types):
        allowed = ", ".join(ctx.settings.upload_content_types)
        raise ApiError(400, f"content_type must be one of: {allowed}")
    try:
        filename = safe_filename(body.filename)
    except UploadRefusedError as exc:
        raise ApiError(400, str(exc)) from None
    attachment_id = uuid.uuid4()
    key = object_key(attachment_id, filename)
    assert ctx.storage is not None
    upload = await run_in_threadpool(ctx.storage.presign_upload, key, content_type)
    outcome = await ctx.run(ctx.app.request_attachment, claim, owner, attachment_id, key,
                            filename, content_type)
    out = AttachmentUpload(attachment_id=attachment_id, url=upload.url, fields=upload.fields,
                           expires_at=upload.expires_at)
    return await ctx.written(outcome.position, 200, out)
