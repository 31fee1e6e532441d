"""No single event stops the read models: text older versions stored (NUL) projects and
replays, and an event a projection cannot apply is skipped by it alone, visibly."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg import Cursor

from domain.app import Claim, Parley
from domain.user import User
from projectors.base import Events
from projectors.rebuild import Rebuild
from projectors.runner import POISON_ATTEMPTS, LiveProjector, live_projections
from projectors.status import status
from projectors.users import UsersProjection
from shared.postgres.positions import projection_health
from shared.settings import Settings
from tests.integration.projection import drain, query, verified

NUL_NAME = "Eve\x00Null"


def register(app: Parley, n: int, name: str) -> int:
    outcome = app.register_user(Claim("anonymous", f"key-{n}", "fp"), f"u{n}@example.com",
                                "hash", name, None, f"t{n}")
    user: User = outcome.value[0]
    return user.number


def test_text_with_nul_stored_by_an_older_version_projects_and_replays(
        app: Parley, settings: Settings) -> None:
    # The domain does not validate characters (the HTTP edge does), so these events are
    # stored exactly as the versions before the edge check stored them.
    eve = register(app, 1, NUL_NAME)
    bob = register(app, 2, "Bob")
    chat, _ = app.create_chat(Claim("user:1", "c", "fp"), eve, "Room\x00", True, [bob]).value
    message = app.post_message(Claim("user:1", "m", "fp"), eve, chat.number, "text",
                               "hi\x00there", None).value
    app.edit_message(Claim("user:1", "e", "fp"), eve, message.number, "\x00edited")

    runner = LiveProjector(settings, app=app)
    drain(runner)  # before the fix: DataError, "PostgreSQL text fields cannot contain NUL"
    assert query(settings, "SELECT display_name FROM users WHERE id = %s", (eve,)) == \
        [("Eve\ufffdNull",)]
    assert query(settings, "SELECT title FROM chats WHERE id = %s", (chat.number,)) == \
        [("Room\ufffd",)]
    assert query(settings, "SELECT content FROM messages WHERE id = %s", (message.number,)) == \
        [("\ufffdedited",)]
    # the aggregates read the same text as the read models
    assert app.repository.get(User.create_id(eve)).display_name == "Eve\ufffdNull"

    swapped = Rebuild(settings, live_projections(), app=app).run()
    assert set(swapped) == {p.name for p in live_projections()}
    verified(settings, live_projections(), app)


class BuggyUsers(UsersProjection):
    """A projection bug that one event's content triggers."""

    def apply(self, events: Events, curs: Cursor[Any]) -> None:
        if any(getattr(event, "display_name", None) == "poison" for _, event in events):
            raise KeyError("a bug in the users projection")
        super().apply(events, curs)


def test_an_event_a_projection_cannot_apply_is_retried_then_skipped_by_it_alone(
        app: Parley, settings: Settings) -> None:
    register(app, 1, "Ann")
    poisoned = register(app, 2, "poison")
    cid = register(app, 3, "Cid")
    chat, _ = app.create_chat(Claim("user:3", "c", "fp"), cid, "After", True, [poisoned]).value
    projections = [p if p.name != "users" else BuggyUsers() for p in live_projections()]
    runner = LiveProjector(settings, projections, app=app)

    for _ in range(POISON_ATTEMPTS - 1):  # tried again as the batch it is, all or nothing
        with pytest.raises(KeyError):
            runner.process_batch()
        assert query(settings, "SELECT count(*) FROM users") == [(0,)]
    health = asyncio.run(_health(settings))
    assert health["failing"] == ["users"] and health["skipped_events"] == 0

    drain(runner)  # the last try isolates the failing event: skipped by `users` alone
    assert [r[0] for r in query(settings, "SELECT display_name FROM users ORDER BY id")] == \
        ["Ann", "Cid"]
    # the other projections went on, in the same batches
    assert query(settings, "SELECT title FROM chats WHERE id = %s", (chat.number,)) == \
        [("After",)]
    head = app.recorder.max_notification_id()
    assert all(runner.positions[p.name] == head for p in projections)
    skipped = query(settings, "SELECT name, error FROM projection_skipped")
    assert len(skipped) == 1 and skipped[0][0] == "users" and "KeyError" in skipped[0][1]
    report = status(app, projections)
    assert [(s.name, s.position) for s in report.skipped] == \
        [("users", query(settings, "SELECT position FROM projection_skipped")[0][0])]
    health = asyncio.run(_health(settings))
    assert health == {"skipped_events": 1, "failing": []}

    # the bug fixed: a rebuild replays the log, the skipped event included
    Rebuild(settings, [UsersProjection()], app=app).run()
    assert [r[0] for r in query(settings, "SELECT display_name FROM users ORDER BY id")] == \
        ["Ann", "poison", "Cid"]
    assert status(app, projections).skipped == []


async def _health(settings: Settings) -> dict[str, Any]:
    async with await psycopg.AsyncConnection.connect(settings.database_url,
                                                     autocommit=True) as conn:
        return await projection_health(conn)
