"""`POST /attachments`: a presigned POST for one voice upload, straight to object storage."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from command_api.context import context
from shared.schemas import AttachmentCreate, AttachmentUpload


async def create_attachment(request: Request) -> Response:
    """What may be uploaded is the domain's upload policy (`domain/uploads.py`)."""
    ctx = context(request)
    owner, claim, body = await ctx.caller(request, AttachmentCreate)
    slot = await ctx.run(ctx.commands.uploads.slot, body.filename, body.content_type)
    assert ctx.storage is not None
    upload = await run_in_threadpool(ctx.storage.presign_upload, slot.key, slot.content_type)
    outcome = await ctx.run(ctx.commands.request_attachment, claim, owner, slot.attachment_id,
                            slot.key, slot.filename, slot.content_type)
    out = AttachmentUpload(attachment_id=slot.attachment_id, url=upload.url,
                           fields=upload.fields, expires_at=upload.expires_at)
    return await ctx.respond(outcome, out)
