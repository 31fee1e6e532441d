"""`/messages`: post text and voice messages, edit text messages."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from command_api.context import Context, context
from domain.chats import message_location
from domain.message import Message
from shared.schemas import MessageCreate, MessageEdit, MessageOut, VoicePayload
from shared.web.endpoints import ApiError, int_param


def message_out(message: Message) -> MessageOut:
    return MessageOut(id=message.number, chat_id=message.chat, author_id=message.author,
                      type=message.type, content=message.content, payload=message.payload,
                      ts=message.created_on,
                      edited_at=message.modified_on if message.edited else None)


async def _voice_payload(ctx: Context, author: int, payload: VoicePayload) -> dict[str, Any]:
    """The author's own attachment, really uploaded, of the type and size it was signed for."""
    attachment = await ctx.run(ctx.app.attachment_of, author, payload.attachment_id)
    assert ctx.storage is not None
    stored = await run_in_threadpool(ctx.storage.stat, attachment.key)
    if stored is None:
        raise ApiError(400, "The attachment has not been uploaded")
    if stored.content_type != attachment.content_type or \
            stored.size > ctx.settings.upload_max_bytes:
        raise ApiError(400, "The uploaded attachment does not match its upload policy")
    return payload.model_dump(mode="json")


async def post_message(request: Request) -> Response:
    ctx = context(request)
    author, claim, body = await ctx.caller(request, MessageCreate)
    payload: dict[str, Any] | None = None
    if body.type == "system":
        raise ApiError(403, "System messages are written by the server only")
    if body.type == "text":
        if not body.content or not body.content.strip() or body.payload is not None:
            raise ApiError(400, "A text message needs non-empty content and no payload")
    else:
        if body.payload is None or body.content is not None:
            raise ApiError(400, "A voice message needs a payload (attachment_id, duration_ms,"
                                " codec) and no content")
        await ctx.run(ctx.app.check_chat_member, author, body.chat_id)
        payload = await _voice_payload(ctx, author, body.payload)
    outcome = await ctx.run(ctx.app.post_message, claim, author, body.chat_id, body.type,
                            body.content, payload)
    return await ctx.written(outcome.position, 201, message_out(outcome.value),
                             location=message_location(outcome.value.number))


async def edit_message(request: Request) -> Response:
    ctx = context(request)
    number = int_param(request.path_params["message_id"], "message_id")
    user, claim, body = await ctx.caller(request, MessageEdit)
    outcome = await ctx.run(ctx.app.edit_message, claim, user, number, body.content)
    return await ctx.written(outcome.position, 200, message_out(outcome.value))
