"""The public payload of each event, published to NATS after the read models committed it."""

from __future__ import annotations

from functools import singledispatch

from domain.user import User
from projectors.base import PublicEvent
from shared import subjects
from shared.schemas import PublicUser, dump


@singledispatch
def public_events(event: object) -> list[PublicEvent]:
    """Private events (sessions, idempotency keys, password hashes) are never published."""
    return []


@public_events.register
def _(event: User.Registered) -> list[PublicEvent]:
    user = PublicUser(id=event.number, display_name=event.display_name,
                      avatar_url=event.avatar_url)
    return [PublicEvent(subjects.user(event.number), "user.registered", dump(user))]
