"""Reactions and edit history (CONTRACT.md "Conversation state"), over REST and WebSocket."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from parley.stack import Stack
from tests.e2e.client import Api, User
from tests.e2e.sockets import frames, opened, run

UP, PARTY = "👍", "🎉"


def react(user: User, message: int, emoji: Any, **kw: Any) -> httpx.Response:
    return user.post(f"/messages/{message}/reactions", {"emoji": emoji}, **kw)


def unreact(user: User, message: int, emoji: str, **kw: Any) -> httpx.Response:
    return user.delete(f"/messages/{message}/reactions/{quote(emoji, safe='')}", **kw)


def reactions(user: User, chat: int, message: int) -> list[dict[str, Any]]:
    """The message's reactions as every read shows them (they must agree)."""
    single = user.get(f"/messages/{message}").json()
    [listed] = [m for m in user.get("/messages", chat_id=chat).json() if m["id"] == message]
    around = [m for m in user.get("/messages", chat_id=chat, around_id=message).json()
              if m["id"] == message]
    assert single == listed == around[0]
    return list(single["reactions"])


def test_reactions_count_by_emoji_in_order_of_first_use_in_every_read(api: Api) -> None:
    ann, bob, cat = User(api, "Ann"), User(api, "Bob"), User(api, "Cat")
    chat = ann.group(bob, cat)["id"]
    said = ann.say(chat, "lunch?")
    assert said["reactions"] == []
    assert reactions(ann, chat, said["id"]) == []

    added = react(bob, said["id"], UP)
    assert added.status_code == 201, added.text
    assert added.json() == {"message_id": said["id"], "chat_id": chat, "user_id": bob.id,
                            "emoji": UP}
    assert int(added.headers["X-Event-Position"]) > 0
    again = react(bob, said["id"], UP)
    assert again.status_code == 200 and again.json() == added.json()
    assert again.headers["X-Event-Position"] == "0"  # nothing written
    assert react(cat, said["id"], PARTY).status_code == 201
    assert react(ann, said["id"], UP).status_code == 201
    expected = [{"emoji": UP, "count": 2, "user_ids": [bob.id, ann.id]},
                {"emoji": PARTY, "count": 1, "user_ids": [cat.id]}]
    assert reactions(cat, chat, said["id"]) == expected
    [listed] = [c for c in cat.get("/chats").json() if c["id"] == chat]
    assert listed["last_message"]["reactions"] == expected
    assert cat.get(f"/chats/{chat}").json()["last_message"]["reactions"] == expected

    edited = ann.patch(f"/messages/{said['id']}", {"content": "lunch at 1?"})
    assert edited.status_code == 200 and edited.json()["reactions"] == expected

    removed = unreact(bob, said["id"], UP)
    assert removed.status_code == 204, removed.text
    assert unreact(bob, said["id"], UP).status_code == 404  # not there any more
    assert unreact(cat, said["id"], UP).status_code == 404  # never there
    # the order is that of each emoji's earliest reaction still standing: bob's 👍 went, so
    # ann's (after cat's 🎉) is now the first 👍
    assert reactions(ann, chat, said["id"]) == [
        {"emoji": PARTY, "count": 1, "user_ids": [cat.id]},
        {"emoji": UP, "count": 1, "user_ids": [ann.id]}]
    assert react(bob, said["id"], UP).status_code == 201  # again: last in line
    assert reactions(ann, chat, said["id"])[1] == {"emoji": UP, "count": 2,
                                                   "user_ids": [ann.id, bob.id]}


def test_emoji_are_checked_and_any_one_travels_url_encoded(api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    said = ann.say(chat, "hi")["id"]
    for emoji in ("👩‍👩‍👧‍👦", "+1", "?#%", ":thumbs_up:", "x" * 32):
        assert react(bob, said, emoji).status_code == 201, emoji
        assert unreact(bob, said, emoji).status_code == 204, emoji
    for bad in ("", "x" * 33, "a b", "\t", "a\nb", "\u3000", "\x00", "\x85", "a/b", "..", 1,
                None, ["👍"]):
        response = react(bob, said, bad)
        assert response.status_code == 400, (bad, response.text)
        assert isinstance(response.json()["detail"], str)
    for bad in ("a b", "\x01", "x" * 33):
        assert unreact(bob, said, bad).status_code == 400, bad
    assert react(bob, said, UP, key=None).status_code == 400  # Idempotency-Key required
    assert react(bob, "abc", UP).status_code == 400  # type: ignore[arg-type]
    assert reactions(bob, chat, said) == []


def test_members_only_and_never_on_a_deleted_message(api: Api) -> None:
    ann, bob, eve = User(api, "Ann"), User(api, "Bob"), User(api, "Eve")
    chat = ann.group(bob)["id"]
    said = ann.say(chat, "mine")["id"]
    assert react(bob, said, UP).status_code == 201
    assert react(eve, said, UP).status_code == 404  # not visible to her, as PATCH answers
    assert unreact(eve, said, UP).status_code == 404
    assert react(ann, 10**12, UP).status_code == 404

    assert ann.delete(f"/chats/{chat}/members/{bob.id}").status_code == 204
    assert react(bob, said, PARTY).status_code == 404  # removed
    assert unreact(bob, said, UP).status_code == 404
    assert reactions(ann, chat, said) == [{"emoji": UP, "count": 1, "user_ids": [bob.id]}]

    assert ann.delete(f"/messages/{said}").status_code == 204
    assert react(ann, said, UP).status_code == 404
    other = ann.say(chat, "other")["id"]
    assert react(ann, other, UP).status_code == 201
    assert ann.delete(f"/chats/{chat}").status_code == 204
    assert react(ann, other, PARTY).status_code == 404
    assert unreact(ann, other, UP).status_code == 404


def test_reaction_frames_reach_the_members_and_no_one_else(api: Api, stack: Stack) -> None:
    ann, bob, eve = User(api, "Ann"), User(api, "Bob"), User(api, "Eve")
    chat = ann.group(bob)["id"]
    said = ann.say(chat, "react to me")["id"]
    data = {"message_id": said, "chat_id": chat, "user_id": bob.id, "emoji": UP}

    async def scenario() -> None:
        sockets = [await opened(stack, u) for u in (ann, bob, eve)]
        assert react(bob, said, UP).status_code == 201
        assert unreact(bob, said, UP).status_code == 204
        for ws in sockets[:2]:
            while (frame := (await frames(ws, 1))[0])["event"] != "message.reaction_added":
                pass
            assert frame["data"] == data and frame["cursor"]
            (frame,) = await frames(ws, 1)
            assert (frame["event"], frame["data"]) == ("message.reaction_removed", data)
        # eve is no member: her first frame is her own chat's, not a reaction
        own = eve.group(title="eve's")["id"]
        (first,) = await frames(sockets[2], 1)
        assert first["event"] == "chat.created" and first["data"]["id"] == own
        for ws in sockets:
            await ws.close()

    run(scenario())


def test_edit_history_is_every_version_oldest_first(api: Api) -> None:
    ann, bob, eve = User(api, "Ann"), User(api, "Bob"), User(api, "Eve")
    chat = ann.group(bob)["id"]
    said = ann.say(chat, "first")
    assert bob.get(f"/messages/{said['id']}/history").json() == [
        {"content": "first", "at": said["ts"]}]
    for text in ("second", "third"):
        assert ann.patch(f"/messages/{said['id']}", {"content": text}).status_code == 200
    edited = ann.get(f"/messages/{said['id']}").json()
    history = bob.get(f"/messages/{said['id']}/history")
    assert history.status_code == 200, history.text
    versions = history.json()
    assert [v["content"] for v in versions] == ["first", "second", "third"]
    assert versions[0]["at"] == said["ts"] and versions[-1]["at"] == edited["edited_at"]
    assert [v["at"] for v in versions] == sorted(v["at"] for v in versions)

    assert eve.get(f"/messages/{said['id']}/history").status_code == 404  # not a member
    assert ann.get("/messages/999999999999/history").status_code == 404
    assert ann.get("/messages/abc/history").status_code == 400
    system = ann.get("/messages", chat_id=chat).json()[-1]
    assert ann.get(f"/messages/{system['id']}/history").json() == [
        {"content": system["content"], "at": system["ts"]}]
    assert ann.delete(f"/chats/{chat}/members/{bob.id}").status_code == 204
    assert bob.get(f"/messages/{said['id']}/history").status_code == 404  # removed
    assert ann.delete(f"/messages/{said['id']}").status_code == 204
    assert ann.get(f"/messages/{said['id']}/history").status_code == 404  # deleted
