"""Read markers: how far one member has read one chat, moved forward only.

A marker is user state that must survive a rebuild and reach the user's other devices live,
so moving it is an event in the log. Posting a message also moves its author's marker to it,
but without an event of its own: the read models take `Message.Posted` as that move (a post
costs no extra write). So the marker the read models show is the later of this aggregate's
and the author's own newest post; this aggregate alone decides whether a `PUT` writes.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import ids


class ReadMarker(Aggregate):
    """One per (chat, member): the newest message of the chat the member has read."""

    class Set(Aggregate.Created):
        chat: int
        user: int
        message: int

    class Moved(Aggregate.Event):
        chat: int
        user: int
        message: int

    @staticmethod
    def create_id(chat: int, user: int) -> UUID:
        return ids.read_marker_id(chat, user)

    @event(Set)
    def __init__(self, chat: int, user: int, message: int) -> None:
        self.chat = chat
        self.user = user
        self.message = message

    def covers(self, message: int) -> bool:
        """Whether the marker is at or after `message` already (a move there changes nothing)."""
        return self.message >= message

    def move_to(self, message: int) -> None:
        """Forward only: a message at or before the marker leaves it as it is."""
        if not self.covers(message):
            self._moved(chat=self.chat, user=self.user, message=message)

    @event(Moved)
    def _moved(self, chat: int, user: int, message: int) -> None:
        self.message = message
