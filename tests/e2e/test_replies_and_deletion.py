"""Replies and deleting messages (CONTRACT.md "Conversation state"), over REST and WebSocket."""

from __future__ import annotations

from typing import Any

import httpx

from parley.stack import Stack
from tests.e2e.client import Api, User
from tests.e2e.sockets import frames, opened, run
from tests.e2e.test_attachments import presign, upload, voice


def reply(user: User, chat_id: int, to: Any, text: str = "re") -> httpx.Response:
    return user.post("/messages", {"chat_id": chat_id, "type": "text", "content": text,
                                   "reply_to_id": to})


# -- replies ---------------------------------------------------------------------------------

def test_a_reply_names_its_message_everywhere(api: Api, stack: Stack) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    first = ann.say(chat, "question")
    assert first["reply_to_id"] is None

    async def scenario() -> None:
        ws = await opened(stack, bob)
        answer = reply(bob, chat, first["id"], "answer")
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["reply_to_id"] == first["id"]
        assert bob.get(f"/messages/{body['id']}").json() == body
        assert [m for m in ann.get("/messages", chat_id=chat).json()
                if m["id"] == body["id"]] == [body]
        # the question's own frame may come first: it can be published after the socket opened
        while (frame := (await frames(ws, 1))[0])["event"] != "message.created" or \
                frame["data"]["id"] == first["id"]:
            pass
        assert frame["data"] == body
        await ws.close()

    run(scenario())


def test_a_reply_to_a_message_of_another_chat_or_none_is_400(api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat, other = ann.group(bob)["id"], ann.group(bob, title="other")["id"]
    elsewhere = ann.say(other, "in the other chat")["id"]
    for to in (elsewhere, 2**62, 0, -1, "1", 1.5, True):
        response = reply(ann, chat, to)
        assert response.status_code == 400, (to, response.text)
        assert isinstance(response.json()["detail"], str)
    assert all(m["type"] == "system" for m in ann.get("/messages", chat_id=chat).json())


def test_a_voice_message_may_reply_too_and_the_reply_survives_an_edit(api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    first = ann.say(chat, "q")
    answer = reply(bob, chat, first["id"]).json()
    edited = bob.patch(f"/messages/{answer['id']}", {"content": "edited"}).json()
    assert edited["reply_to_id"] == first["id"] and edited["content"] == "edited"


# -- deleting --------------------------------------------------------------------------------

def test_the_author_deletes_and_it_is_gone_from_every_read_and_frame(api: Api,
                                                                     stack: Stack) -> None:
    ann, bob, eve = User(api, "Ann"), User(api, "Bob"), User(api, "Eve")
    chat = ann.group(bob)["id"]
    kept, gone = bob.say(chat, "kept"), bob.say(chat, "to delete")

    async def scenario() -> None:
        sockets = [await opened(stack, u) for u in (ann, bob, eve)]
        key = "delete-" + str(gone["id"])
        response = bob.delete(f"/messages/{gone['id']}", key=key)
        assert response.status_code == 204, response.text
        for ws in sockets[:2]:
            while (frame := (await frames(ws, 1))[0])["event"] != "message.deleted":
                pass
            assert frame["data"] == {"id": gone["id"], "chat_id": chat}
        # eve is no member: her first frame is her own chat's, not the deletion
        own = eve.group(title="eve's")["id"]
        (first,) = await frames(sockets[2], 1)
        assert first["event"] == "chat.created" and first["data"]["id"] == own
        for ws in sockets:
            await ws.close()
        assert bob.get(f"/messages/{gone['id']}").status_code == 404
        ids = [m["id"] for m in ann.get("/messages", chat_id=chat).json()]
        assert gone["id"] not in ids and kept["id"] in ids
        around = [m["id"] for m in ann.get("/messages", chat_id=chat,
                                           around_id=gone["id"]).json()]
        assert gone["id"] not in around and kept["id"] in around
        # the retry with the same key is told it completed; a new key finds nothing
        retried = bob.delete(f"/messages/{gone['id']}", key=key)
        assert retried.status_code == 409 and retried.json()["original_status"] == 204
        assert bob.delete(f"/messages/{gone['id']}").status_code == 404
        assert bob.patch(f"/messages/{gone['id']}", {"content": "x"}).status_code == 404
        assert reply(ann, chat, gone["id"]).status_code == 400

    run(scenario())


def test_who_may_delete(api: Api) -> None:
    creator, member, other, outsider = (User(api, n) for n in ("Cre", "Mem", "Oth", "Out"))
    chat = creator.group(member, other)["id"]
    by_member = member.say(chat, "member's")["id"]
    assert other.delete(f"/messages/{by_member}").status_code == 403  # not author, not creator
    assert outsider.delete(f"/messages/{by_member}").status_code == 404  # not visible
    assert creator.delete(f"/messages/{by_member}").status_code == 204  # a group's creator
    system = next(m["id"] for m in creator.get("/messages", chat_id=chat).json()
                  if m["type"] == "system")
    assert creator.delete(f"/messages/{system}").status_code == 403
    assert creator.delete("/messages/999999999").status_code == 404
    assert creator.delete("/messages/abc").status_code == 400
    # a direct chat has no creator's privilege: only the author deletes
    direct = creator.post("/chats", {"is_group": False, "member_ids": [member.id]}).json()["id"]
    theirs = member.say(direct, "mine")["id"]
    assert creator.delete(f"/messages/{theirs}").status_code == 403
    assert member.delete(f"/messages/{theirs}").status_code == 204


def test_a_removed_member_and_a_deleted_chat(api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    said = bob.say(chat, "before leaving")["id"]
    assert ann.delete(f"/chats/{chat}/members/{bob.id}").status_code == 204
    assert bob.delete(f"/messages/{said}").status_code == 404  # no longer visible to him
    assert ann.delete(f"/chats/{chat}").status_code == 204
    assert ann.delete(f"/messages/{said}").status_code == 404  # the chat is gone


def test_a_deleted_voice_message_takes_its_attachment_from_the_others(api: Api,
                                                                      stack: Stack) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    presigned = presign(ann)
    assert upload(presigned).status_code in (200, 201, 204)
    attachment = presigned["attachment_id"]
    sent = voice(ann, chat, attachment)
    assert sent.status_code == 201, sent.text
    message = sent.json()
    assert bob.get(f"/attachments/{attachment}").status_code == 200
    assert ann.delete(f"/messages/{message['id']}").status_code == 204
    assert bob.get(f"/attachments/{attachment}").status_code == 404
    assert ann.get(f"/attachments/{attachment}").status_code == 200  # still the uploader's
