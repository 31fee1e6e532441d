"""Messages over real HTTP: shapes, validation, paging, edits and the authorization matrix."""

from __future__ import annotations

import re

import pytest

from tests.e2e.client import Api, User

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def pair(api: Api) -> tuple[User, User, int]:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    return ann, bob, ann.group(bob)["id"]


def test_post_text_message_returns_seed_shape(pair: tuple[User, User, int]) -> None:
    ann, bob, chat = pair
    response = ann.post("/messages", {"chat_id": chat, "type": "text",
                                      "content": "Hello everyone!"})
    assert response.status_code == 201, response.text
    message = response.json()
    assert {k: message[k] for k in ("chat_id", "author_id", "type", "content", "payload")} == {
        "chat_id": chat, "author_id": ann.id, "type": "text", "content": "Hello everyone!",
        "payload": None}
    assert ISO_Z.match(message["ts"]) and message["edited_at"] is None
    listed = bob.get("/messages", chat_id=chat).json()
    assert listed[0] == message
    assert bob.get(f"/messages/{message['id']}").json() == message


def test_chat_starts_with_a_system_message(pair: tuple[User, User, int]) -> None:
    ann, _, chat = pair
    (created,) = ann.get("/messages", chat_id=chat).json()
    assert created["type"] == "system" and created["payload"]["action"] == "chat_created"


@pytest.mark.parametrize("body", [
    {"type": "text", "content": ""},
    {"type": "text", "content": "   "},
    {"type": "text"},
    {"type": "text", "content": "x" * 4001},
    {"type": "text", "content": "hi", "payload": {"attachment_id": "x"}},
    {"type": "voice", "content": None},
    {"type": "voice", "payload": {"duration_ms": 5000, "codec": "opus"}},
    {"type": "voice", "payload": {"attachment_id": "00000000-0000-0000-0000-000000000000",
                                  "duration_ms": 0, "codec": "opus"}},
    {"type": "video", "content": "hi"},
])
def test_invalid_messages_are_400(pair: tuple[User, User, int], body: dict) -> None:
    ann, _, chat = pair
    response = ann.post("/messages", {"chat_id": chat, **body})
    assert response.status_code == 400, response.text
    assert response.json()["detail"]


def test_message_rules_by_status(pair: tuple[User, User, int], api: Api) -> None:
    ann, _, chat = pair
    eve = User(api, "Eve")
    system = ann.post("/messages", {"chat_id": chat, "type": "system", "content": "fake"})
    assert system.status_code == 403
    outsider = eve.post("/messages", {"chat_id": chat, "type": "text", "content": "hi"})
    assert outsider.status_code == 403
    assert ann.post("/messages", {"chat_id": 99999999, "type": "text",
                                  "content": "hi"}).status_code == 404
    assert ann.post("/messages", {"chat_id": "abc", "type": "text",
                                  "content": "hi"}).status_code == 400


def test_listing_errors(pair: tuple[User, User, int], api: Api) -> None:
    ann, _, chat = pair
    eve = User(api)
    assert ann.get("/messages").status_code == 400
    assert ann.get("/messages", chat_id="x").status_code == 400
    assert ann.get("/messages", chat_id=chat, limit=0).status_code == 400
    assert ann.get("/messages", chat_id=chat, before_id="y").status_code == 400
    assert ann.get("/messages", chat_id=99999999).status_code == 404
    assert eve.get("/messages", chat_id=chat).status_code == 403
    assert api.get("/messages", params={"chat_id": chat}).status_code == 401


def test_paging_yields_every_message_once_in_order(pair: tuple[User, User, int]) -> None:
    ann, bob, chat = pair
    sent = [(ann if i % 2 else bob).say(chat, f"m{i}")["id"] for i in range(125)]
    seen: list[int] = []
    page = ann.get("/messages", chat_id=chat).json()
    assert len(page) == 50
    while page:
        seen.extend(m["id"] for m in page)
        page = ann.get("/messages", chat_id=chat, before_id=page[-1]["id"], limit=30).json()
    user_messages = [i for i in seen if i in set(sent)]
    assert user_messages == sorted(sent, reverse=True)
    assert len(seen) == len(set(seen)) == 126  # plus the system message
    assert len(ann.get("/messages", chat_id=chat, limit=500).json()) == 100


def test_edit_message(pair: tuple[User, User, int], api: Api) -> None:
    ann, bob, chat = pair
    message = ann.say(chat, "typo")
    edited = ann.patch(f"/messages/{message['id']}", {"content": "fixed", "payload": None})
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["content"] == "fixed" and ISO_Z.match(body["edited_at"])
    assert body["ts"] == message["ts"] and body["id"] == message["id"]
    assert bob.get("/messages", chat_id=chat).json()[0] == body
    assert bob.patch(f"/messages/{message['id']}", {"content": "mine"}).status_code == 403
    assert User(api).patch(f"/messages/{message['id']}", {"content": "x"}).status_code == 404
    assert ann.patch("/messages/99999999", {"content": "x"}).status_code == 404
    assert ann.patch(f"/messages/{message['id']}", {"content": ""}).status_code == 400
    system_id = ann.get("/messages", chat_id=chat).json()[-1]["id"]
    assert ann.patch(f"/messages/{system_id}", {"content": "x"}).status_code == 403


def test_member_who_left_loses_access(pair: tuple[User, User, int]) -> None:
    _, bob, chat = pair
    message = bob.say(chat, "bye")
    assert bob.delete(f"/chats/{chat}/members/{bob.id}").status_code == 204
    assert bob.get("/messages", chat_id=chat).status_code == 403
    assert bob.get(f"/messages/{message['id']}").status_code == 404
    assert bob.patch(f"/messages/{message['id']}", {"content": "x"}).status_code == 404
    assert bob.post("/messages", {"chat_id": chat, "type": "text",
                                  "content": "back?"}).status_code == 403
