"""`/chats...`: create, rename, delete, and change members."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from command_api.context import Context, context
from domain.chat import Chat
from domain.chats import chat_location
from shared.schemas import ChatCreate, ChatOut, ChatUpdate, MembersAdd, MembersOut
from shared.web.endpoints import int_param


async def _chat_out(ctx: Context, chat: Chat, viewer: int) -> ChatOut:
    """The chat as `viewer` sees it: a direct chat without a title shows the other's name."""
    title = chat.title
    if not chat.is_group and title is None:
        other = next((m for m in chat.members if m != viewer), viewer)
        user = await ctx.run(ctx.app.get_user, other)
        title = user.display_name if user else None
    return ChatOut(id=chat.number, title=title, is_group=chat.is_group,
                   created_at=chat.created_on, creator_id=chat.creator)


async def create_chat(request: Request) -> Response:
    ctx = context(request)
    user, claim, body = await ctx.caller(request, ChatCreate)
    outcome = await ctx.run(ctx.app.create_chat, claim, user, body.title, body.is_group,
                            body.member_ids)
    chat, created = outcome.value
    out = await _chat_out(ctx, chat, user)
    if not created:  # the pair's existing direct chat; nothing was written
        return await ctx.written(0, 200, out, location=chat_location(chat.number), wait=False)
    return await ctx.written(outcome.position, 201, out, location=chat_location(chat.number))


async def update_chat(request: Request) -> Response:
    ctx = context(request)
    number = int_param(request.path_params["chat_id"], "chat_id")
    user, claim, body = await ctx.caller(request, ChatUpdate)
    outcome = await ctx.run(ctx.app.rename_chat, claim, user, number, body.title)
    return await ctx.written(outcome.position, 200, await _chat_out(ctx, outcome.value, user))


async def delete_chat(request: Request) -> Response:
    ctx = context(request)
    number = int_param(request.path_params["chat_id"], "chat_id")
    user, claim = await ctx.bodiless_caller(request)
    outcome = await ctx.run(ctx.app.delete_chat, claim, user, number)
    return await ctx.written(outcome.position, 204)


async def add_members(request: Request) -> Response:
    ctx = context(request)
    number = int_param(request.path_params["chat_id"], "chat_id")
    user, claim, body = await ctx.caller(request, MembersAdd)
    outcome = await ctx.run(ctx.app.add_members, claim, user, number, body.user_ids)
    out = MembersOut(chat_id=number, member_ids=outcome.value.members)
    return await ctx.written(outcome.position, 200, out)


async def remove_member(request: Request) -> Response:
    ctx = context(request)
    number = int_param(request.path_params["chat_id"], "chat_id")
    member = int_param(request.path_params["user_id"], "user_id")
    user, claim = await ctx.bodiless_caller(request)
    outcome = await ctx.run(ctx.app.remove_member, claim, user, number, member)
    return await ctx.written(outcome.position, 204)


