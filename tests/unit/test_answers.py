"""What a command did, as HTTP: one table for the response and for the key's 409."""

from __future__ import annotations

import uuid

import pytest

from command_api.answers import ANSWERS, answer, response_location
from domain.outcomes import Change, Effect, Resource

CASES = [
    (Effect(Change.CREATED, Resource.USER, 7), 201, "/api/v1/users/7", True),
    (Effect(Change.CREATED, Resource.CHAT, 3), 201, "/api/v1/chats/3", True),
    (Effect(Change.FOUND, Resource.CHAT, 3), 200, "/api/v1/chats/3", True),
    (Effect(Change.CHANGED, Resource.CHAT, 3), 200, "/api/v1/chats/3", False),
    (Effect(Change.CREATED, Resource.MESSAGE, 9), 201, "/api/v1/messages/9", True),
    (Effect(Change.CHANGED, Resource.MESSAGE, 9), 200, "/api/v1/messages/9", False),
    (Effect(Change.REMOVED, Resource.CHAT, 3), 204, None, False),
    (Effect(Change.REMOVED, Resource.MESSAGE, 9), 204, None, False),
    (Effect(Change.CHANGED, Resource.READ_MARKER, 3), 200, None, False),
    (Effect(Change.FOUND, Resource.READ_MARKER, 3), 200, None, False),
    (Effect(Change.CHANGED, Resource.MEMBERS, 3), 200, None, False),
    (Effect(Change.REMOVED, Resource.MEMBER, 4), 204, None, False),
    (Effect(Change.CREATED, Resource.SESSION, uuid.uuid4()), 200, None, False),
    (Effect(Change.CHANGED, Resource.SESSION, uuid.uuid4()), 200, None, False),
    (Effect(Change.CREATED, Resource.ATTACHMENT, uuid.uuid4()), 200, None, False),
    (Effect(Change.CREATED, Resource.REACTION, 9), 201, None, False),
    (Effect(Change.FOUND, Resource.REACTION, 9), 200, None, False),
    (Effect(Change.REMOVED, Resource.REACTION, 9), 204, None, False),
]


@pytest.mark.parametrize(("effect", "status", "location", "shown"), CASES)
def test_each_effect_has_its_answer(effect: Effect, status: int, location: str | None,
                                    shown: bool) -> None:
    assert answer(effect) == (status, location)
    assert response_location(effect) == (location if shown else None)


def test_the_cases_above_cover_the_table() -> None:
    assert {(effect.change, effect.resource) for effect, *_ in CASES} == set(ANSWERS)
