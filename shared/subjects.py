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
