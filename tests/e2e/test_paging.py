"""`GET /messages` pages both ways: `before_id`, `after_id`, `around_id` (CONTRACT.md)."""

from __future__ import annotations

import pytest

from tests.e2e.client import Api, User


@pytest.fixture(scope="module")
def chat(api: Api) -> tuple[User, int, list[int]]:
    """A chat with its system note and 20 messages; their ids, oldest first."""
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat_id = ann.group(bob, title="paging")["id"]
    posted = [ann.say(chat_id, f"m{i}")["id"] for i in range(20)]
    page = ann.get("/messages", chat_id=chat_id, limit=100).json()
    ids = sorted(m["id"] for m in page)
    assert ids[-20:] == posted and len(ids) == 21  # the chat_created note comes first
    return ann, chat_id, ids


def page(user: User, chat_id: int, **params: int) -> list[int]:
    response = user.get("/messages", chat_id=chat_id, **params)
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()]


def test_after_id_is_the_page_right_after_newest_first(
        chat: tuple[User, int, list[int]]) -> None:
    ann, chat_id, ids = chat
    assert page(ann, chat_id, after_id=ids[4], limit=3) == [ids[7], ids[6], ids[5]]
    assert page(ann, chat_id, after_id=ids[18], limit=5) == [ids[20], ids[19]]
    assert page(ann, chat_id, after_id=ids[20]) == []
    # paging forward from the first page back reaches the newest without gaps or repeats
    seen, at = [], ids[0]
    while batch := page(ann, chat_id, after_id=at, limit=6):
        assert batch == sorted(batch, reverse=True)
        seen.extend(reversed(batch))
        at = batch[0]
    assert seen == ids[1:]


def test_before_id_still_pages_back(chat: tuple[User, int, list[int]]) -> None:
    ann, chat_id, ids = chat
    assert page(ann, chat_id, before_id=ids[5], limit=2) == [ids[4], ids[3]]
    assert page(ann, chat_id, limit=2) == [ids[20], ids[19]]


def test_around_id_centres_the_page_on_the_message(chat: tuple[User, int, list[int]]) -> None:
    ann, chat_id, ids = chat
    assert page(ann, chat_id, around_id=ids[10], limit=5) == ids[8:13][::-1]
    assert page(ann, chat_id, around_id=ids[10], limit=4) == ids[8:12][::-1]
    assert page(ann, chat_id, around_id=ids[10], limit=1) == [ids[10]]
    # near an end, the other side fills the page
    assert page(ann, chat_id, around_id=ids[19], limit=6) == ids[15:21][::-1]
    assert page(ann, chat_id, around_id=ids[0], limit=4) == ids[0:4][::-1]


def test_around_an_id_that_is_not_there_is_the_page_around_where_it_would_be(
        api: Api, chat: tuple[User, int, list[int]]) -> None:
    ann, chat_id, ids = chat
    other = ann.group(User(api, "Cat"), title="elsewhere")["id"]
    foreign = ann.say(other, "not in the paging chat")["id"]  # newer than every id of `chat`
    assert page(ann, chat_id, around_id=foreign, limit=3) == ids[18:21][::-1]


@pytest.mark.parametrize("params", [
    {"before_id": 5, "after_id": 3}, {"after_id": 3, "around_id": 4},
    {"before_id": 5, "around_id": 4}, {"after_id": "x"}, {"around_id": 0},
    {"after_id": "-1"}, {"around_id": "1e3"},
])
def test_bad_anchors_are_400(chat: tuple[User, int, list[int]], params: dict[str, object]) -> None:
    ann, chat_id, _ = chat
    response = ann.get("/messages", chat_id=chat_id, **params)
    assert response.status_code == 400, response.text
    assert isinstance(response.json()["detail"], str)


def test_non_members_page_nothing(api: Api, chat: tuple[User, int, list[int]]) -> None:
    _, chat_id, ids = chat
    eve = User(api, "Eve")
    for anchor in ("after_id", "around_id"):
        assert eve.get("/messages", chat_id=chat_id, **{anchor: ids[3]}).status_code == 403
