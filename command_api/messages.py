"""`/messages`: post text and voice messages (maybe replies), edit text messages, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from command_api.context import context
from domain.message import Message
from shared.postgres.reactions import reactions_of
from shared.schemas import MessageCreate, MessageEdit, MessageOut
from shared.web.endpoints import int_param, json_response


def message_out(message: Message) -> MessageOut:
    return MessageOut.of(message, message.created_on,
                         message.modified_on if message.edited else None)


async def post_message(request: Request) -> Response:
    """The rules (who may post what, a voice message's upload) are the domain's:
    `ChatCommands.post_message`; storage is asked what it holds through `stat`."""
    ctx = context(request)
    author, claim, body = await ctx.caller(request, MessageCreate)
    payload = body.payload.model_dump(mode="json") if body.payload is not None else None
    stat = ctx.storage.stat if ctx.storage is not None else None
    outcome = await ctx.run(ctx.commands.post_message, claim, author, body.chat_id, body.type,
                            body.content, payload, stat, body.reply_to_id)
    return await ctx.respond(outcome, message_out(outcome.value))


async def edit_message(request: Request) -> Response:
    ctx = context(request)
    number = int_param(request.path_params["message_id"], "message_id")
    user, claim, body = await ctx.caller(request, MessageEdit)
    outcome = await ctx.run(ctx.commands.edit_message, claim, user, number, body.content)
    headers = await ctx.settle(outcome)
    edited = message_out(outcome.value)
    if ctx.readmodels is not None:  # its reactions are no part of the message aggregate
        async with ctx.readmodels.connection() as conn:
            edited.reactions = (await reactions_of(conn, [number])).get(number, [])
    return json_response(edited, 200, headers)


async def delete_message(request: Request) -> Response:
    ctx = context(request)
    number = int_param(request.path_params["message_id"], "message_id")
    user, claim = await ctx.delete_caller(request)
    outcome = await ctx.run(ctx.commands.delete_message, claim, user, number)
    return await ctx.respond(outcome)
