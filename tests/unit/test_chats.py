"""Chat, message and attachment rules on in-memory persistence (no servers)."""

from __future__ import annotations

import itertools
import uuid

import pytest

from command_api.answers import answer
from domain.app import Claim, Parley
from domain.chat import Chat, title_seen_by
from domain.chat_cache import ChatCache
from domain.errors import (
    ForbiddenError,
    IdempotencyConflictError,
    InvalidCommandError,
    NotFoundError,
)
from domain.message import Message
from domain.outcomes import Change, Effect, Resource

_keys = itertools.count()


def claim(user: int = 1) -> Claim:
    return Claim(scope=f"user:{user}", key=f"k{next(_keys)}", fingerprint="fp",
                 answer_for=answer)


@pytest.fixture
def app() -> Parley:
    parley = Parley(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    for n in range(1, 5):  # users 1..4
        parley.register_user(Claim("anonymous", f"r{n}", "fp"), f"u{n}@example.com", "h",
                             f"User {n}", None, "t")
    return parley


def group(app: Parley, creator: int = 1, members: tuple[int, ...] = (2, 3)) -> int:
    chat, created = app.create_chat(claim(creator), creator, "Team", True, list(members)).value
    assert created
    return chat.number


def test_group_chat_has_creator_as_member_and_a_system_message(app: Parley) -> None:
    outcome = app.create_chat(claim(), 1, "Team", True, [2, 3, 2])
    chat, created = outcome.value
    assert created and chat.members == [1, 2, 3] and chat.creator == 1
    assert outcome.position > 0


def test_group_needs_a_title_and_known_members(app: Parley) -> None:
    with pytest.raises(InvalidCommandError):
        app.create_chat(claim(), 1, None, True, [2])
    with pytest.raises(InvalidCommandError, match="Unknown user"):
        app.create_chat(claim(), 1, "T", True, [2, 99])


def test_direct_chat_is_unique_per_pair(app: Parley) -> None:
    first, created = app.create_chat(claim(1), 1, None, False, [2]).value
    again, created_again = app.create_chat(claim(2), 2, None, False, [1]).value
    assert created and not created_again and again.number == first.number
    with pytest.raises(InvalidCommandError):
        app.create_chat(claim(), 1, None, False, [2, 3])
    with pytest.raises(InvalidCommandError):
        app.create_chat(claim(), 1, None, False, [1])


def test_rename_rules(app: Parley) -> None:
    number = group(app)
    assert app.rename_chat(claim(), 1, number, "New").value.title == "New"
    with pytest.raises(ForbiddenError):
        app.rename_chat(claim(2), 2, number, "Mine")
    with pytest.raises(ForbiddenError):
        app.rename_chat(claim(4), 4, number, "Outsider")
    direct, _ = app.create_chat(claim(), 1, None, False, [4]).value
    with pytest.raises(InvalidCommandError):
        app.rename_chat(claim(), 1, direct.number, "Nope")
    with pytest.raises(NotFoundError):
        app.rename_chat(claim(), 1, 999, "Nope")


def test_members_add_remove_and_leave(app: Parley) -> None:
    number = group(app, members=(2,))
    assert app.add_members(claim(), 1, number, [3, 2]).value.members == [1, 2, 3]
    with pytest.raises(ForbiddenError):
        app.add_members(claim(2), 2, number, [4])
    with pytest.raises(ForbiddenError):
        app.remove_member(claim(2), 2, number, 3)
    app.remove_member(claim(3), 3, number, 3)  # leave
    app.remove_member(claim(1), 1, number, 2)  # creator removes
    with pytest.raises(InvalidCommandError):
        app.remove_member(claim(1), 1, number, 1)
    with pytest.raises(ForbiddenError):
        app.post_message(claim(2), 2, number, "text", "still here?", None)


def test_delete_rules(app: Parley) -> None:
    number = group(app)
    with pytest.raises(ForbiddenError):
        app.delete_chat(claim(2), 2, number)
    app.delete_chat(claim(1), 1, number)
    with pytest.raises(NotFoundError):
        app.post_message(claim(1), 1, number, "text", "hello?", None)
    direct, _ = app.create_chat(claim(3), 3, None, False, [4]).value
    app.delete_chat(claim(4), 4, direct.number)  # either member of a direct chat


def test_messages_post_and_edit(app: Parley) -> None:
    number = group(app)
    message = app.post_message(claim(2), 2, number, "text", "hi", None).value
    assert isinstance(message, Message) and message.chat == number
    edited = app.edit_message(claim(2), 2, message.number, "hello").value
    assert edited.content == "hello" and edited.edited
    with pytest.raises(ForbiddenError):
        app.edit_message(claim(1), 1, message.number, "not mine")
    with pytest.raises(NotFoundError):
        app.edit_message(claim(4), 4, message.number, "not visible")
    with pytest.raises(NotFoundError):
        app.edit_message(claim(2), 2, 10_000, "missing")
    with pytest.raises(ForbiddenError):
        app.post_message(claim(4), 4, number, "text", "outsider", None)


def test_attachments_belong_to_their_owner(app: Parley) -> None:
    attachment_id = uuid.uuid4()
    requested = app.request_attachment(claim(1), 1, attachment_id, f"{attachment_id}/a.opus",
                                       "a.opus", "audio/opus")
    assert requested.effect == Effect(Change.CREATED, Resource.ATTACHMENT, attachment_id)
    assert app.attachment_of(1, attachment_id).key == f"{attachment_id}/a.opus"
    with pytest.raises(InvalidCommandError):
        app.attachment_of(2, attachment_id)
    with pytest.raises(InvalidCommandError):
        app.attachment_of(1, uuid.uuid4())


def test_idempotency_covers_chat_commands(app: Parley) -> None:
    key = claim()
    chat = app.create_chat(key, 1, "Team", True, [2]).value[0]
    with pytest.raises(IdempotencyConflictError) as info:
        app.create_chat(key, 1, "Team", True, [2])
    assert info.value.answer == (201, f"/api/v1/chats/{chat.number}")


def test_commands_say_what_they_did(app: Parley) -> None:
    created = app.create_chat(claim(1), 1, None, False, [2])
    chat = created.value[0]
    assert created.effect == Effect(Change.CREATED, Resource.CHAT, chat.number)
    found = app.create_chat(claim(2), 2, None, False, [1])
    assert found.effect == Effect(Change.FOUND, Resource.CHAT, chat.number)
    assert found.position == 0  # nothing written
    number = group(app)
    assert app.rename_chat(claim(), 1, number, "New").effect == \
        Effect(Change.CHANGED, Resource.CHAT, number)
    assert app.add_members(claim(), 1, number, [4]).effect == \
        Effect(Change.CHANGED, Resource.MEMBERS, number)
    assert app.remove_member(claim(), 1, number, 4).effect == \
        Effect(Change.REMOVED, Resource.MEMBER, 4)
    posted = app.post_message(claim(2), 2, number, "text", "hi", None)
    assert posted.effect == Effect(Change.CREATED, Resource.MESSAGE, posted.value.number)
    assert app.edit_message(claim(2), 2, posted.value.number, "hello").effect == \
        Effect(Change.CHANGED, Resource.MESSAGE, posted.value.number)
    assert app.delete_chat(claim(), 1, number).effect == \
        Effect(Change.REMOVED, Resource.CHAT, number)


def test_the_key_keeps_the_answer_its_claim_gives(app: Parley) -> None:
    """The domain stores the caller's answer without reading it (no HTTP in the domain)."""
    told: list[Effect] = []

    def answer_for(effect: Effect) -> tuple[int, str | None]:
        told.append(effect)
        return 7, f"resource {effect.id}"

    key = Claim("user:1", "told", "fp", answer_for)
    chat = app.create_chat(key, 1, "Team", True, [2]).value[0]
    assert told == [Effect(Change.CREATED, Resource.CHAT, chat.number)]
    with pytest.raises(IdempotencyConflictError) as info:
        app.create_chat(key, 1, "Team", True, [2])
    assert info.value.answer == (7, f"resource {chat.number}")


def test_a_direct_chat_without_a_title_shows_the_other_members_name(app: Parley) -> None:
    direct = app.create_chat(claim(1), 1, None, False, [2]).value[0]
    assert app.title_seen_by(direct, 1) == "User 2"
    assert app.title_seen_by(direct, 2) == "User 1"
    number = group(app)
    assert app.title_seen_by(app._chat(number), 2) == "Team"
    names = {1: "Ann", 2: "Bob"}.get
    assert title_seen_by(1, None, False, [1, 2], names) == "Bob"
    assert title_seen_by(1, "Ours", False, [1, 2], names) == "Ours"  # a title wins
    assert title_seen_by(1, None, False, [1], names) == "Ann"  # alone in it: their own name
    assert title_seen_by(1, None, False, [1, 3], names) is None  # the other is unknown


def test_read_chats_keep_the_most_recently_used_within_their_member_bound() -> None:
    chats = [Chat(number=n, creator=1, title="t", is_group=True, members=list(range(1, 10)))
             for n in range(1, 5)]  # 9 members each: 10 in the bound
    kept = ChatCache(size=30)
    for chat in chats[:3]:
        kept.put(chat)
    assert kept.weight == 30
    assert kept.get(chats[0].id) is chats[0]  # now the most recently used
    kept.put(chats[3])  # over the bound: the least recently used (chat 2) goes
    assert kept.get(chats[1].id) is None
    assert [kept.get(c.id) is not None for c in (chats[0], chats[2], chats[3])] == [True] * 3
    kept.put(chats[3])  # replacing an entry does not count it twice
    assert kept.weight == 30
    kept.forget([chats[0].id, chats[2].id])
    assert kept.weight == 10 and kept.get(chats[0].id) is None
