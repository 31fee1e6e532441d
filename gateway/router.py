"""Which connections of this process want which frames, and membership changes in stream order."""

from __future__ import annotations

from typing import Protocol

from gateway.membership import DELETED, MEMBERSHIP_EVENTS, joined_users, removed_user
from gateway.protocol import Frame


class Listener(Protocol):
    user_id: int

    def deliver(self, frame: Frame) -> None:
        """Take the frame without waiting (enqueue it, or give up on the client)."""

    def membership_changed(self, frame: Frame) -> None:
        """A membership frame about this listener's user: join or leave the chat's subject."""

    def send_live(self, text: str) -> None:
        """Take a live-only frame (typing, presence) without waiting, if it is live itself."""


class Router:
    """Fans each frame out to the listeners of its subject.

    `dispatch` is synchronous and listeners never wait, so one slow client cannot delay the
    others or the feed. Membership frames are applied around the fan-out in stream order: an
    added user joins the chat's subject before the frame goes out (so it sees its own
    `member_added` and everything after), a removed user leaves after it (so it sees its
    `member_removed`, then nothing more). Connections still loading their snapshot are taps:
    they see every frame and filter it themselves once they know their memberships.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, set[Listener]] = {}
        self._users: dict[int, set[Listener]] = {}
        self._taps: set[Listener] = set()

    def subscribe(self, subject: str, listener: Listener) -> None:
        self._listeners.setdefault(subject, set()).add(listener)

    def unsubscribe(self, subject: str, listener: Listener) -> None:
        listeners = self._listeners.get(subject)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[subject]

    def watch_user(self, user_id: int, listener: Listener) -> None:
        self._users.setdefault(user_id, set()).add(listener)

    def unwatch_user(self, user_id: int, listener: Listener) -> None:
        listeners = self._users.get(user_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._users[user_id]

    def listeners(self, subject: str) -> tuple[Listener, ...]:
        """The live sessions on `subject` now (for a chat: its members' sockets here)."""
        return tuple(self._listeners.get(subject, ()))

    def tap(self, listener: Listener) -> None:
        self._taps.add(listener)

    def untap(self, listener: Listener) -> None:
        self._taps.discard(listener)

    def wants(self, subject: str) -> bool:
        """Whether a frame on `subject` could reach anyone here: a loading session (tap), a
        subscriber, or any live session (a membership frame may concern its user)."""
        return bool(self._taps or self._users or subject in self._listeners)

    def dispatch(self, frame: Frame) -> None:
        for listener in tuple(self._taps):
            listener.deliver(frame)
        if frame.event in MEMBERSHIP_EVENTS:
            for user in joined_users(frame):
                for listener in tuple(self._users.get(user, ())):
                    listener.membership_changed(frame)
        # a copy: a listener may unsubscribe itself (on overflow) while we iterate
        receivers = tuple(self._listeners.get(frame.subject, ()))
        for listener in receivers:
            listener.deliver(frame)
        if frame.event == DELETED:
            for listener in receivers:
                listener.membership_changed(frame)
        elif (removed := removed_user(frame)) is not None:
            for listener in tuple(self._users.get(removed, ())):
                listener.membership_changed(frame)
