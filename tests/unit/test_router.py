"""The router decides cheaply whether a stream message can reach any session of this process."""

from __future__ import annotations

from gateway.protocol import Frame
from gateway.router import Router
from shared import subjects


class Session:
    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.user_id = 0

    def deliver(self, frame: Frame) -> None:
        self.frames.append(frame)

    def membership_changed(self, frame: Frame) -> None:
        """Not needed here."""

    def send_live(self, text: str) -> None:
        """Not needed here."""


def test_a_frame_is_wanted_only_where_a_session_could_take_it() -> None:
    router, session = Router(), Session()
    chat = subjects.chat(1)
    assert not router.wants(chat)  # no session at all: the feed skips decoding
    router.tap(session)  # loading: sees everything
    assert router.wants(chat) and router.wants(subjects.chat(2))
    router.untap(session)
    router.subscribe(chat, session)
    assert router.wants(chat) and not router.wants(subjects.chat(2))
    router.watch_user(7, session)  # a live session: any chat frame may add or remove its user
    assert router.wants(subjects.chat(2))
    router.unwatch_user(7, session)
    router.unsubscribe(chat, session)
    assert not router.wants(chat)
