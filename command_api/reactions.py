"""`/messages/{id}/reactions`: add the caller's emoji to a message, or take it back."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from command_api.context import context
from domain.reaction import Reaction
from shared.schemas import ReactionAdd, ReactionOut, check_text
from shared.web.endpoints import ApiError, int_param


def reaction_out(reaction: Reaction) -> ReactionOut:
    return ReactionOut(message_id=reaction.message, chat_id=reaction.chat, user_id=reaction.user,
                       emoji=reaction.emoji)


async def add_reaction(request: Request) -> Response:
    """201 added, 200 it was there already (nothing written); the rules are the domain's:
    `ChatCommands.add_reaction`."""
    ctx = context(request)
    number = int_param(request.path_params["message_id"], "message_id")
    user, claim, body = await ctx.caller(request, ReactionAdd)
    outcome = await ctx.run(ctx.commands.add_reaction, claim, user, number, body.emoji)
    return await ctx.respond(outcome, reaction_out(outcome.value))


async def remove_reaction(request: Request) -> Response:
    ctx = context(request)
    number = int_param(request.path_params["message_id"], "message_id")
    emoji = request.path_params["emoji"]  # percent-decoded by the server
    try:
        check_text(emoji)
    except ValueError as exc:
        raise ApiError(400, f"emoji {exc}") from None
    user, claim = await ctx.delete_caller(request)
    outcome = await ctx.run(ctx.commands.remove_reaction, claim, user, number, emoji)
    return await ctx.respond(outcome)
