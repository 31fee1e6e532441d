"""Typing and presence frames between gateway processes: NATS core, never the stream.

Both are ephemeral (CONTRACT.md "Typing and presence"): no cursor, never replayed, lost by a
client that is not connected at the moment. Every gateway process subscribes to
`parley-live.typing.*` and `parley-live.presence.*` and hands each message to the sockets of
this process that should see it, which it knows from the router's chat subjects: a socket
listens on the subject of every chat its user is a member of now.
"""

from __future__ import annotations

import logging

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from pydantic import BaseModel, ValidationError

from gateway.router import Router
from shared import subjects
from shared.schemas import PresenceOut, TypingOut

log = logging.getLogger("parley.gateway")


class PresenceNote(BaseModel):
    """What one gateway tells the others: the frame's data, and the chats that reach whom."""

    presence: PresenceOut
    chats: list[int]


def frame_text(event: str, data: BaseModel) -> str:
    """A frame without a cursor: `{"event", "data"}`."""
    return f'{{"event":"{event}","data":{data.model_dump_json()}}}'


class LiveRelay:
    """Publishes typing and presence, and delivers what any process published."""

    def __init__(self, nc: NATS, router: Router) -> None:
        self.nc = nc
        self.router = router
        self._subs: list[Subscription] = []

    async def start(self) -> None:
        self._subs = [
            await self.nc.subscribe(subjects.typing("*"), cb=self._on_typing),
            await self.nc.subscribe(subjects.presence("*"), cb=self._on_presence),
        ]

    async def stop(self) -> None:
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except NatsError:
                pass

    async def typing(self, chat: int, user: int) -> None:
        await self._publish(subjects.typing(chat),
                            TypingOut(chat_id=chat, user_id=user).model_dump_json())

    async def presence(self, presence: PresenceOut, chats: list[int]) -> None:
        await self._publish(subjects.presence(presence.user_id),
                            PresenceNote(presence=presence, chats=chats).model_dump_json())

    async def _publish(self, subject: str, payload: str) -> None:
        try:
            await self.nc.publish(subject, payload.encode())
        except NatsError as exc:  # ephemeral: lost, like a frame to a disconnected client
            log.warning("not published on %s: %s", subject, type(exc).__name__)

    async def _on_typing(self, msg: Msg) -> None:
        try:
            typing = TypingOut.model_validate_json(msg.data)
        except ValidationError:
            log.warning("skipping undecodable message on %s", msg.subject)
            return
        text = frame_text("typing", typing)
        for listener in self.router.listeners(subjects.chat(typing.chat_id)):
            if listener.user_id != typing.user_id:  # none of the typist's own sockets
                listener.send_live(text)

    async def _on_presence(self, msg: Msg) -> None:
        try:
            note = PresenceNote.model_validate_json(msg.data)
        except ValidationError:
            log.warning("skipping undecodable message on %s", msg.subject)
            return
        user = note.presence.user_id
        receivers = {listener for chat in note.chats
                     for listener in self.router.listeners(subjects.chat(chat))
                     if listener.user_id != user}
        text = frame_text("presence", note.presence)
        for listener in receivers:  # once per socket, however many chats they share
            listener.send_live(text)
