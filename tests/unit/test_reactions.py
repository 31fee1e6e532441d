"""Reactions and edit history in the domain, without servers."""

from __future__ import annotations

import itertools

import pytest

from domain.app import Claim, Parley
from domain.errors import InvalidCommandError, NotFoundError
from domain.message import Message, versions
from domain.outcomes import Change
from domain.reaction import Reaction, check_emoji

_keys = itertools.count()


def claim(user: int) -> Claim:
    return Claim(f"user:{user}", f"re{next(_keys)}", "fp")


@pytest.fixture
def app() -> Parley:
    parley = Parley(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    for n in (1, 2, 3):
        parley.register_user(Claim("anonymous", f"r{n}", "fp"), f"u{n}@example.com", "h",
                             f"User {n}", None, "t")
    return parley


@pytest.fixture
def message(app: Parley) -> int:
    chat = app.create_chat(claim(1), 1, "Team", True, [2]).value[0].number
    return app.post_message(claim(1), 1, chat, "text", "hello", None).value.number


def stored(app: Parley, aggregate_id: object) -> list[object]:
    return list(app.events.get(aggregate_id))  # type: ignore[arg-type]


def test_adding_twice_writes_once_and_removing_then_adding_again_is_one_aggregate(
        app: Parley, message: int) -> None:
    first = app.add_reaction(claim(2), 2, message, "👍")
    assert first.effect.change is Change.CREATED and first.position > 0
    again = app.add_reaction(claim(2), 2, message, "👍")
    assert again.effect.change is Change.FOUND and again.position == 0
    removed = app.remove_reaction(claim(2), 2, message, "👍")
    assert removed.effect.change is Change.REMOVED
    with pytest.raises(NotFoundError):
        app.remove_reaction(claim(2), 2, message, "👍")
    readded = app.add_reaction(claim(2), 2, message, "👍")
    assert readded.effect.change is Change.CREATED
    events = stored(app, Reaction.create_id(message, 2, "👍"))
    assert [type(e) for e in events] == [Reaction.Added, Reaction.Removed, Reaction.Readded]
    assert all((e.message, e.chat, e.user, e.emoji)  # type: ignore[attr-defined]
               == (message, readded.value.chat, 2, "👍") for e in events)
    # another user's and another emoji are other aggregates; the message itself is untouched
    app.add_reaction(claim(1), 1, message, "👍")
    app.add_reaction(claim(1), 1, message, "🎉")
    assert [type(e) for e in stored(app, Message.create_id(message))] == [Message.Posted]


def test_a_reaction_never_there_is_not_found(app: Parley, message: int) -> None:
    with pytest.raises(NotFoundError, match="Reaction"):
        app.remove_reaction(claim(2), 2, message, "👍")


def test_only_members_and_only_messages_still_there(app: Parley, message: int) -> None:
    for user in (3, 99):  # not a member; no such user
        with pytest.raises(NotFoundError, match="Message"):
            app.add_reaction(claim(user), user, message, "👍")
    with pytest.raises(NotFoundError):
        app.add_reaction(claim(1), 1, 10**9, "👍")
    app.add_reaction(claim(2), 2, message, "👍")
    app.delete_message(claim(1), 1, message)
    for add in (True, False):
        with pytest.raises(NotFoundError, match="Message"):
            (app.add_reaction if add else app.remove_reaction)(claim(2), 2, message, "👍")


@pytest.mark.parametrize("emoji", ["👍", "+1", ":thumbs_up:", "👩‍👩‍👧‍👦", "👍🏽", "x" * 32, "a.b"])
def test_emoji_that_are_taken(emoji: str) -> None:
    check_emoji(emoji)


@pytest.mark.parametrize("emoji", ["", "x" * 33, "a b", " ", "\t", "a\nb", "\u00a0", "\u3000",
                                   "a/b", ".", ".."])
def test_emoji_that_are_refused(app: Parley, message: int, emoji: str) -> None:
    with pytest.raises(InvalidCommandError, match="emoji"):
        app.add_reaction(claim(2), 2, message, emoji)
    with pytest.raises(InvalidCommandError, match="emoji"):
        app.remove_reaction(claim(2), 2, message, emoji)


def test_versions_are_the_post_then_each_edit_and_none_once_deleted(app: Parley,
                                                                    message: int) -> None:
    app.edit_message(claim(1), 1, message, "second")
    app.edit_message(claim(1), 1, message, "third")
    found = versions(stored(app, Message.create_id(message)))
    assert [content for content, _ in found] == ["hello", "second", "third"]
    assert [at for _, at in found] == sorted(at for _, at in found)
    app.delete_message(claim(1), 1, message)
    with pytest.raises(NotFoundError):
        versions(stored(app, Message.create_id(message)))
    with pytest.raises(NotFoundError):
        versions([])
