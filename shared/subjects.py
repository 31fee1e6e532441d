"""NATS subject names: `<prefix>.chat.<chat_id>` and `<prefix>.user.<user_id>`, one stream."""

from __future__ import annotations

PREFIX = "parley"
# Published on the user's subject when a login session ends; the gateway closes that session's
# sockets and never forwards the event itself to clients.
SESSION_ENDED = "session.ended"


def all_subjects() -> str:
    return f"{PREFIX}.>"


def user(user_id: int) -> str:
    return f"{PREFIX}.user.{user_id}"


def chat(chat_id: int) -> str:
    return f"{PREFIX}.chat.{chat_id}"


# Typing and presence are live-only (never logged, never replayed): NATS core subjects outside
# `parley.>`, so the stream never stores them. Every gateway process subscribes to both.
LIVE_PREFIX = "parley-live"


def typing(chat_id: int | str) -> str:  # "*": every chat
    return f"{LIVE_PREFIX}.typing.{chat_id}"


def presence(user_id: int | str) -> str:  # "*": every user
    return f"{LIVE_PREFIX}.presence.{user_id}"
