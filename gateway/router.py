"""Which connections of this process want which subjects."""

from __future__ import annotations

from typing import Protocol

from gateway.protocol import Frame


class Listener(Protocol):
    def deliver(self, frame: Frame) -> None:
        """Take the frame without waiting (enqueue it, or give up on the client)."""


class Router:
    """Fans each frame out to the listeners of its subject.

    `dispatch` is synchronous and listeners never wait, so one slow client cannot delay the
    others or the feed; and because frames are dispatched in stream order, a listener that
    changes its subjects while handling a frame (a membership event, later) sees every later
    frame under the new subjects, with nothing lost or reordered in between.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, set[Listener]] = {}

    def subscribe(self, subject: str, listener: Listener) -> None:
        self._listeners.setdefault(subject, set()).add(listener)

    def unsubscribe(self, subject: str, listener: Listener) -> None:
        listeners = self._listeners.get(subject)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[subject]

    def dispatch(self, frame: Frame) -> None:
        # a copy: a listener may unsubscribe itself (on overflow) while we iterate
        for listener in tuple(self._listeners.get(frame.subject, ())):
            listener.deliver(frame)

    def subjects(self) -> int:
        return len(self._listeners)
