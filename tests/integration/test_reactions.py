"""The `reactions` read model on real PostgreSQL: the reactions standing, however it is cut."""

from __future__ import annotations

import pytest

from domain.app import Parley
from domain.errors import NotFoundError
from domain.message import Message
from domain.reaction import Reaction
from projectors.reactions import ReactionsProjection
from projectors.runner import LiveProjector
from shared.settings import Settings
from tests.integration.projection import drain, query, verified
from tests.integration.workload import Workload


def standing(app: Parley, workload: Workload) -> set[tuple[int, int, str, int]]:
    """What the domain says stands: reactions there, on messages and chats still there."""
    found = set()
    for number, user, emoji in set(workload.reacted):
        reaction = app._load(Reaction.create_id(number, user, emoji), Reaction, "")
        message = app._load(Message.create_id(number), Message, "")
        if reaction.present and not message.deleted and not app._chat(message.chat).deleted:
            found.add((number, user, emoji, message.chat))
    return found


@pytest.mark.parametrize("limit", [1000, 4])
def test_the_rows_are_the_reactions_standing(app: Parley, settings: Settings,
                                             limit: int) -> None:
    workload = Workload(app, seed=31)
    workload.setup()
    workload.run(150)
    for number, _, _ in workload.reacted[:3]:  # some on messages deleted since
        author = app._load(Message.create_id(number), Message, "").author
        try:
            app.delete_message(workload.claim(author), author, number)
        except NotFoundError:
            pass  # deleted already
    workload.delete_a_chat()
    workload.run(30)
    drain(LiveProjector(settings, app=app), limit=limit)

    rows = set(query(settings, "SELECT message_id, user_id, emoji, chat_id FROM reactions"))
    expected = standing(app, workload)
    assert rows == expected and len(expected) >= 5
    verified(settings, [ReactionsProjection()], app, batch_size=3)
