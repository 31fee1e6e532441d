"""Read markers, unread counts and chat-list previews (CONTRACT.md "Conversation state")."""

from __future__ import annotations

from typing import Any

import httpx

from parley.stack import Stack
from tests.e2e.client import Api, User
from tests.e2e.sockets import frames, opened, run


def mark(user: User, chat: int, message: Any) -> httpx.Response:
    return user.api.http.put(f"/chats/{chat}/read", json={"message_id": message},
                             headers={"Authorization": f"Bearer {user.token}"})


def listed(user: User, chat: int) -> dict[str, Any]:
    found = [c for c in user.get("/chats").json() if c["id"] == chat]
    assert len(found) == 1, found
    single = user.get(f"/chats/{chat}").json()
    assert single == found[0]  # one shape for the list and the chat
    return found[0]


def test_unread_counts_markers_and_the_last_message(api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    note = ann.get("/messages", chat_id=chat).json()[0]
    assert note["type"] == "system"
    fresh = listed(bob, chat)
    assert (fresh["unread_count"], fresh["last_read_message_id"]) == (0, None)  # system: no
    assert fresh["last_message"] == note
    assert listed(ann, chat)["last_read_message_id"] == note["id"]  # her post moved hers

    m1, m2, m3 = (ann.say(chat, f"m{i}") for i in (1, 2, 3))
    bobs = listed(bob, chat)
    assert (bobs["unread_count"], bobs["last_message"]) == (3, m3)
    anns = listed(ann, chat)
    assert (anns["unread_count"], anns["last_read_message_id"]) == (0, m3["id"])

    read = mark(bob, chat, m2["id"])
    assert read.status_code == 200, read.text
    assert read.json() == {"chat_id": chat, "last_read_message_id": m2["id"], "unread_count": 1}
    assert int(read.headers["X-Event-Position"]) > 0
    assert listed(bob, chat)["unread_count"] == 1
    members = {m["id"]: m for m in bob.get(f"/chats/{chat}/members").json()}
    assert members[bob.id]["last_read_message_id"] == m2["id"]
    assert members[ann.id]["last_read_message_id"] == m3["id"]

    back = mark(bob, chat, m1["id"])  # never backwards, and nothing is written
    assert back.status_code == 200
    assert back.json()["last_read_message_id"] == m2["id"]
    assert back.headers["X-Event-Position"] == "0"

    own = bob.say(chat, "bob's")  # posting moves the author's marker
    assert (listed(bob, chat)["unread_count"], listed(bob, chat)["last_read_message_id"]) == \
        (0, own["id"])
    assert listed(ann, chat)["unread_count"] == 1


def test_deleting_takes_a_message_out_of_counts_and_previews(api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    m1, m2 = ann.say(chat, "one"), ann.say(chat, "two")
    assert listed(bob, chat)["unread_count"] == 2
    assert ann.delete(f"/messages/{m2['id']}").status_code == 204
    after = listed(bob, chat)
    assert (after["unread_count"], after["last_message"]) == (1, m1)
    assert mark(bob, chat, m1["id"]).json()["unread_count"] == 0
    assert ann.delete(f"/messages/{m1['id']}").status_code == 204  # read already: still 0
    assert listed(bob, chat)["unread_count"] == 0
    assert listed(bob, chat)["last_message"]["type"] == "system"


def test_a_member_added_later_has_the_history_unread(api: Api) -> None:
    ann, bob, cat = User(api, "Ann"), User(api, "Bob"), User(api, "Cat")
    chat = ann.group(bob)["id"]
    ann.say(chat, "a"), bob.say(chat, "b")
    assert ann.post(f"/chats/{chat}/members", {"user_ids": [cat.id]}).status_code == 200
    cats = listed(cat, chat)
    assert (cats["unread_count"], cats["last_read_message_id"]) == (2, None)


def test_mark_read_refusals(api: Api) -> None:
    ann, bob, eve = User(api, "Ann"), User(api, "Bob"), User(api, "Eve")
    chat, other = ann.group(bob)["id"], ann.group(bob, title="other")["id"]
    said, elsewhere = ann.say(chat, "here"), ann.say(other, "there")
    assert mark(bob, chat, elsewhere["id"]).status_code == 400
    assert mark(bob, chat, 10**12).status_code == 400
    for bad in ("1", 0, None, 1.5):
        response = mark(bob, chat, bad)
        assert response.status_code == 400 and isinstance(response.json()["detail"], str)
    assert mark(eve, chat, said["id"]).status_code == 403
    assert mark(bob, 10**12, said["id"]).status_code == 404
    gone = ann.say(chat, "gone")
    assert ann.delete(f"/messages/{gone['id']}").status_code == 204
    assert mark(bob, chat, gone["id"]).status_code == 400
    assert ann.delete(f"/chats/{chat}/members/{bob.id}").status_code == 204
    assert mark(bob, chat, said["id"]).status_code == 403  # removed
    assert ann.delete(f"/chats/{chat}").status_code == 204
    assert mark(ann, chat, said["id"]).status_code == 404  # deleted chat


def test_chat_read_frames_reach_every_member_and_no_one_else(api: Api, stack: Stack) -> None:
    ann, bob, eve = User(api, "Ann"), User(api, "Bob"), User(api, "Eve")
    chat = ann.group(bob)["id"]
    said = ann.say(chat, "read me")

    async def scenario() -> None:
        sockets = [await opened(stack, u) for u in (ann, bob, bob, eve)]  # bob: two devices
        assert mark(bob, chat, said["id"]).status_code == 200
        for ws in sockets[:3]:
            while (frame := (await frames(ws, 1))[0])["event"] != "chat.read":
                pass
            assert frame["data"] == {"chat_id": chat, "user_id": bob.id,
                                     "last_read_message_id": said["id"]}
        own = eve.group(title="eve's")["id"]
        (first,) = await frames(sockets[3], 1)
        assert first["event"] == "chat.created" and first["data"]["id"] == own
        for ws in sockets:
            await ws.close()

    run(scenario())
