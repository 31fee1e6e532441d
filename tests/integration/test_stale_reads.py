"""A post or edit decided on a chat that changed before the append is decided again.

Messages are their own aggregates, so nothing in the events table's uniqueness stops a post
from landing after its author's removal. These tests force that interleaving: the removal (by
another application instance, as another API worker would) commits between the post loading
the chat and appending the message. The append notices, rolls back, and the command runs again
on the fresh chat, where the author is no longer a member.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from domain.app import Claim, Parley
from domain.chat import Chat
from domain.errors import ForbiddenError, NotFoundError
from domain.eventstore.application import STALE_RETRIES
from domain.eventstore.recorder import StaleReadError
from domain.message import Message
from shared.settings import Settings


@pytest.fixture
def apps(settings: Settings) -> Iterator[tuple[Parley, Parley]]:
    env = settings.eventsourcing_env()
    poster, admin = Parley(env=env), Parley(env=env)
    yield poster, admin
    poster.close()
    admin.close()


def group_chat(app: Parley) -> int:
    for n in (1, 2):
        app.register_user(Claim("anonymous", f"r{n}", "fp"), f"u{n}@example.com", "h",
                          f"U{n}", None, f"t{n}")
    chat, _ = app.create_chat(Claim("user:1", "c", "fp"), 1, "team", True, [2]).value
    return int(chat.number)


def race(app: Parley, change: Callable[[], Any]) -> list[int | None]:
    """Make `change` commit right after the app's next chat read (from its memory or the
    store); the version of each read, None for one that refused."""
    read = app._chat_visible_to
    reads: list[int | None] = []

    def reading_then_changing(number: int, user: int) -> Chat:
        try:
            chat = read(number, user)
        except Exception:
            reads.append(None)
            raise
        reads.append(chat.version)
        if len(reads) == 1:
            change()
        return chat

    app._chat_visible_to = reading_then_changing  # type: ignore[method-assign]
    return reads


def posted_by(app: Parley, author: int) -> list[Message]:
    return [n for n in (app.repository.get(Message.create_id(i))
                        for i in range(1, 100) if app._exists(Message.create_id(i)))
            if n.author == author and n.type == "text"]


def test_a_post_racing_its_authors_removal_is_refused(apps: tuple[Parley, Parley]) -> None:
    poster, admin = apps
    chat = group_chat(poster)
    loads = race(poster, lambda: admin.remove_member(Claim("user:1", "rm", "fp"), 1, chat, 2))
    with pytest.raises(ForbiddenError):
        poster.run_command(poster.post_message, Claim("user:2", "p", "fp"), 2, chat, "text",
                           "sent while being removed", None)
    assert len(loads) == 2 and loads[1] is None  # decided twice: the first went stale
    assert posted_by(poster, 2) == []
    # the key was not consumed by the refused attempt
    with pytest.raises(ForbiddenError):
        poster.run_command(poster.post_message, Claim("user:2", "p", "fp"), 2, chat, "text",
                           "again", None)


def test_a_post_racing_the_chats_deletion_is_refused(apps: tuple[Parley, Parley]) -> None:
    poster, admin = apps
    chat = group_chat(poster)
    race(poster, lambda: admin.delete_chat(Claim("user:1", "del", "fp"), 1, chat))
    with pytest.raises(NotFoundError):
        poster.run_command(poster.post_message, Claim("user:2", "p", "fp"), 2, chat, "text",
                           "sent while deleted", None)
    assert posted_by(poster, 2) == []


def test_an_edit_racing_its_authors_removal_is_refused(apps: tuple[Parley, Parley]) -> None:
    poster, admin = apps
    chat = group_chat(poster)
    message = poster.post_message(Claim("user:2", "p", "fp"), 2, chat, "text", "before",
                                  None).value
    race(poster, lambda: admin.remove_member(Claim("user:1", "rm", "fp"), 1, chat, 2))
    with pytest.raises(NotFoundError):
        poster.run_command(poster.edit_message, Claim("user:2", "e", "fp"), 2, message.number,
                           "after removal")
    assert poster.repository.get(message.id).content == "before"


def test_a_post_whose_chat_changed_harmlessly_still_goes_through(
        apps: tuple[Parley, Parley]) -> None:
    poster, admin = apps
    chat = group_chat(poster)
    loads = race(poster, lambda: admin.rename_chat(Claim("user:1", "mv", "fp"), 1, chat, "new"))
    message = poster.run_command(poster.post_message, Claim("user:2", "p", "fp"), 2, chat,
                                 "text", "still welcome", None).value
    assert loads[0] is not None and loads[1] == loads[0] + 1  # decided again, renamed chat
    assert [m.content for m in posted_by(poster, 2)] == ["still welcome"]
    assert message.content == "still welcome"


# -- chats kept in memory for posting (domain.chat_cache.ChatCache) -----------------------------

def post(app: Parley, author: int, chat: int, text: str) -> Message:
    return app.run_command(app.post_message, Claim(f"user:{author}", text, "fp"), author, chat,
                           "text", text, None).value


@pytest.mark.parametrize("change, refused", [
    (lambda admin, chat: admin.remove_member(Claim("user:1", "rm", "fp"), 1, chat, 2),
     ForbiddenError),
    (lambda admin, chat: admin.delete_chat(Claim("user:1", "del", "fp"), 1, chat),
     NotFoundError),
], ids=["author removed", "chat deleted"])
def test_a_change_by_another_worker_refuses_posts_through_a_kept_chat(
        apps: tuple[Parley, Parley], change: Callable[[Parley, int], Any],
        refused: type[Exception]) -> None:
    poster, admin = apps
    chat = group_chat(poster)
    post(poster, 2, chat, "kept")  # the poster now keeps the chat in memory
    change(admin, chat)
    with pytest.raises(refused):
        post(poster, 2, chat, "after the change")
    assert [m.content for m in posted_by(poster, 2)] == ["kept"]


def test_a_member_added_by_another_worker_can_post_at_once(apps: tuple[Parley, Parley]) -> None:
    poster, admin = apps
    chat = group_chat(poster)
    admin.register_user(Claim("anonymous", "r3", "fp"), "u3@example.com", "h", "U3", None, "t3")
    post(poster, 1, chat, "kept")  # kept in memory without user 3
    admin.add_members(Claim("user:1", "add", "fp"), 1, chat, [3])
    assert post(poster, 3, chat, "just added").author == 3


def test_a_kept_chat_is_not_read_from_the_store_again(apps: tuple[Parley, Parley]) -> None:
    poster, _ = apps
    chat = group_chat(poster)
    loads = 0
    load = poster._chat

    def counting(number: int) -> Chat:
        nonlocal loads
        loads += 1
        return load(number)

    poster._chat = counting  # type: ignore[method-assign]
    for i in range(5):
        post(poster, 2, chat, f"m{i}")
    assert loads == 1


def test_a_post_whose_chat_changes_at_every_try_gives_up_stale(
        apps: tuple[Parley, Parley]) -> None:
    poster, admin = apps
    chat = group_chat(poster)
    read = poster._chat_visible_to
    tries = 0

    def reading_then_renaming(number: int, user: int) -> Chat:
        nonlocal tries
        tries += 1
        found = read(number, user)
        admin.rename_chat(Claim("user:1", f"mv{tries}", "fp"), 1, chat, f"title {tries}")
        return found

    poster._chat_visible_to = reading_then_renaming  # type: ignore[method-assign]
    with pytest.raises(StaleReadError):
        post(poster, 2, chat, "never settles")
    assert tries == STALE_RETRIES + 1
    assert posted_by(poster, 2) == []
