"""`/chats...`: create, rename, delete, change members, and mark read."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from command_api.context import Context, context
from domain.chat import Chat
from shared.schemas import (
    ChatCreate,
    ChatOut,
    ChatUpdate,
    MarkRead,
    MembersAdd,
    MembersOut,
    ReadState,
)
from shared.web.endpoints import int_param, json_response, read_json, validate


async def _chat_out(ctx: Context, chat: Chat, viewer: int) -> ChatOut:
    """The chat as `viewer` sees it (`domain.chat.title_seen_by`)."""
    title = await ctx.run(ctx.commands.title_seen_by, chat, viewer)
    return ChatOut(id=chat.number, title=title, is_group=chat.is_group,
                   created_at=chat.created_on, creator_id=chat.creator)


async def create_chat(request: Request) -> Response:
    ctx = context(request)
    user, claim, body = await ctx.caller(request, ChatCreate)
    outcome = await ctx.run(ctx.commands.create_chat, claim, user, body.title, body.is_group,
                            body.member_ids)
    chat, _ = outcome.value  # 201 created, or 200 the pair's existing direct chat
    return await ctx.respond(outcome, await _chat_out(ctx, chat, user))


async def update_chat(request: Request) -> Response:
    ctx = context(request)
    number = int_param(request.path_params["chat_id"], "chat_id")
    user, claim, body = await ctx.caller(request, ChatUpdate)
    outcome = await ctx.run(ctx.commands.rename_chat, claim, user, number, body.title)
    return await ctx.respond(outcome, await _chat_out(ctx, outcome.value, user))


async def delete_chat(request: Request) -> Response:
    ctx = context(request)
    number = int_param(request.path_params["chat_id"], "chat_id")
    user, claim = await ctx.delete_caller(request)
    outcome = await ctx.run(ctx.commands.delete_chat, claim, user, number)
    return await ctx.respond(outcome)


async def add_members(request: Request) -> Response:
    ctx = context(request)
    number = int_param(request.path_params["chat_id"], "chat_id")
    user, claim, body = await ctx.caller(request, MembersAdd)
    outcome = await ctx.run(ctx.commands.add_members, claim, user, number, body.user_ids)
    out = MembersOut(chat_id=number, member_ids=outcome.value.members)
    return await ctx.respond(outcome, out)


async def remove_member(request: Request) -> Response:
    ctx = context(request)
    number = int_param(request.path_params["chat_id"], "chat_id")
    member = int_param(request.path_params["user_id"], "user_id")
    user, claim = await ctx.delete_caller(request)
    outcome = await ctx.run(ctx.commands.remove_member, claim, user, number, member)
    return await ctx.respond(outcome)


async def mark_read(request: Request) -> Response:
    """`PUT /chats/{id}/read`: no Idempotency-Key (repeating it changes nothing). The answer
    is the caller's read state once the read models show the move (bounded), from them: a
    post of the caller's own may have moved the marker further, and only they count."""
    ctx = context(request)
    number = int_param(request.path_params["chat_id"], "chat_id")
    user = await ctx.writer(request)
    body = validate(MarkRead, await read_json(request))
    outcome = await ctx.run(ctx.commands.mark_read, user, number, body.message_id)
    headers = await ctx.settle(outcome)
    assert ctx.readmodels is not None
    async with ctx.readmodels.connection() as conn:
        cur = await conn.execute(
            "SELECT r.last_read_message_id, GREATEST(n.countable - r.base, 0) FROM chat_reads r"
            " JOIN chat_counts n ON n.chat_id = r.chat_id WHERE r.chat_id = %s AND r.user_id = %s",
            (number, user))
        row = await cur.fetchone()
    shown, unread = row if row is not None else (None, 0)
    marker = max(shown or 0, outcome.value.message)  # the read models may not have it yet
    return json_response(ReadState(chat_id=number, last_read_message_id=marker,
                                   unread_count=unread), 200, headers)
