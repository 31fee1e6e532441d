"""Reactions: one aggregate per (message, user, emoji), with a uuid5 id.

Not events of the `Message`: a popular message gets many reactions at once, and as events of
one aggregate each would race the others for the message's next version (retried, then 503).
Apart, reactions of different users never collide; the same user adding the same emoji twice
at once is a key collision, decided again (the second finds it there: 200). The command still
names the message and its chat as read (`expected=`), so a reaction never lands after the
message's deletion or its author's removal from the chat.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import ids
from domain.errors import InvalidCommandError, NotFoundError

MAX_EMOJI = 32
UNUSABLE_SEGMENTS = (".", "..")  # a URL's dot segments: clients resolve them away


def check_emoji(emoji: str) -> None:
    """1..32 characters, no whitespace; usable as one URL path segment (DELETE names it)."""
    if not 1 <= len(emoji) <= MAX_EMOJI:
        raise InvalidCommandError(f"emoji must be 1 to {MAX_EMOJI} characters")
    if any(c.isspace() for c in emoji):
        raise InvalidCommandError("emoji must not contain spaces")
    if "/" in emoji or emoji in UNUSABLE_SEGMENTS:
        raise InvalidCommandError("emoji must not contain '/' nor be '.' or '..'")


class Reaction(Aggregate):
    """One user's one emoji on one message, there or removed (and maybe added again)."""

    class Added(Aggregate.Created):
        message: int
        chat: int
        user: int
        emoji: str

    class Removed(Aggregate.Event):
        message: int
        chat: int
        user: int
        emoji: str

    class Readded(Aggregate.Event):
        """Added again after a removal: the same aggregate, so the id stays the key."""

        message: int
        chat: int
        user: int
        emoji: str

    @staticmethod
    def create_id(message: int, user: int, emoji: str) -> UUID:
        return ids.reaction_id(message, user, emoji)

    @event(Added)
    def __init__(self, message: int, chat: int, user: int, emoji: str) -> None:
        self.message = message
        self.chat = chat
        self.user = user
        self.emoji = emoji
        self.present = True

    def add(self) -> None:
        """Add it again after a removal (the caller checks `present` first: 200, no event)."""
        assert not self.present, "already there"
        self._readded(message=self.message, chat=self.chat, user=self.user, emoji=self.emoji)

    @event(Readded)
    def _readded(self, message: int, chat: int, user: int, emoji: str) -> None:
        self.present = True

    def remove(self) -> None:
        if not self.present:
            raise NotFoundError("Reaction not found")
        self._removed(message=self.message, chat=self.chat, user=self.user, emoji=self.emoji)

    @event(Removed)
    def _removed(self, message: int, chat: int, user: int, emoji: str) -> None:
        self.present = False
