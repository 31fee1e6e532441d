"""Chats and members over real HTTP: seed shapes, CONTRACT rules, authorization matrix."""

from __future__ import annotations

import re

import pytest

from tests.e2e.client import Api, User

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_create_group_chat_returns_seed_shape_and_is_listed(api: Api) -> None:
    ann, bob, cat = User(api, "Ann"), User(api, "Bob"), User(api, "Cat")
    response = ann.post("/chats", {"title": "New Project", "is_group": True,
                                   "member_ids": [bob.id, cat.id]})
    assert response.status_code == 201, response.text
    chat = response.json()
    assert {"id", "title", "is_group", "created_at"} <= set(chat)
    assert chat["title"] == "New Project" and chat["is_group"] is True
    assert ISO_Z.match(chat["created_at"])
    for user in (ann, bob, cat):
        listed = user.get("/chats").json()
        assert [c["id"] for c in listed] == [chat["id"]]
    got = bob.get(f"/chats/{chat['id']}")
    assert got.status_code == 200 and got.json()["title"] == "New Project"
    members = ann.get(f"/chats/{chat['id']}/members").json()
    assert [m["id"] for m in members] == [ann.id, bob.id, cat.id]
    assert "email" not in members[0]


def test_chat_is_readable_immediately_after_creation(api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    for i in range(100):
        chat = ann.group(bob, title=f"T{i}")
        assert ann.get(f"/chats/{chat['id']}").status_code == 200


def test_direct_chat_is_unique_and_titled_per_viewer(api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    first = ann.post("/chats", {"is_group": False, "member_ids": [bob.id]})
    assert first.status_code == 201, first.text
    assert first.json()["title"] == "Bob"
    again = bob.post("/chats", {"is_group": False, "member_ids": [ann.id]})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["title"] == "Ann"
    assert bob.get(f"/chats/{first.json()['id']}").json()["title"] == "Ann"
    assert ann.get("/chats").json()[0]["title"] == "Bob"


@pytest.mark.parametrize("body", [
    {"is_group": True, "member_ids": []},
    {"title": "x", "is_group": False, "member_ids": []},
    {"title": "x", "is_group": True, "member_ids": [999999999]},
    {"title": "x", "is_group": "yes", "member_ids": [1]},
    {"title": "x", "is_group": True},
    {"title": "", "is_group": True, "member_ids": []},
])
def test_invalid_chat_creation_is_400(api: Api, body: dict) -> None:
    response = User(api).post("/chats", body)
    assert response.status_code == 400, response.text
    assert response.json()["detail"]


def test_direct_chat_needs_exactly_one_other_user(api: Api) -> None:
    ann, bob, cat = User(api), User(api), User(api)
    assert ann.post("/chats", {"is_group": False, "member_ids": [bob.id, cat.id]}).status_code \
        == 400
    assert ann.post("/chats", {"is_group": False, "member_ids": [ann.id]}).status_code == 400


def test_chats_are_ordered_by_last_activity(api: Api) -> None:
    ann, bob = User(api), User(api)
    older = ann.group(bob, title="older")
    newer = ann.group(bob, title="newer")
    assert [c["id"] for c in ann.get("/chats").json()] == [newer["id"], older["id"]]
    ann.say(older["id"], "bump")
    assert [c["id"] for c in ann.get("/chats").json()] == [older["id"], newer["id"]]


def test_rename_rules(api: Api) -> None:
    ann, bob, eve = User(api), User(api), User(api)
    chat = ann.group(bob)
    renamed = ann.patch(f"/chats/{chat['id']}", {"title": "Renamed"})
    assert renamed.status_code == 200 and renamed.json()["title"] == "Renamed"
    assert bob.get(f"/chats/{chat['id']}").json()["title"] == "Renamed"
    assert bob.patch(f"/chats/{chat['id']}", {"title": "Mine"}).status_code == 403
    assert eve.patch(f"/chats/{chat['id']}", {"title": "Eve"}).status_code == 403
    assert ann.patch("/chats/99999999", {"title": "x"}).status_code == 404
    assert ann.patch(f"/chats/{chat['id']}", {"title": ""}).status_code == 400
    direct = ann.post("/chats", {"is_group": False, "member_ids": [eve.id]}).json()
    assert ann.patch(f"/chats/{direct['id']}", {"title": "x"}).status_code == 400


def test_get_chat_404_and_403(api: Api) -> None:
    ann, bob, eve = User(api), User(api), User(api)
    chat = ann.group(bob)
    assert eve.get(f"/chats/{chat['id']}").status_code == 403
    assert eve.get(f"/chats/{chat['id']}/members").status_code == 403
    assert ann.get("/chats/99999999").status_code == 404
    assert ann.get("/chats/abc").status_code == 400
    assert eve.get("/chats").json() == []


def test_members_add_remove_leave(api: Api) -> None:
    ann, bob, cat, eve = User(api), User(api), User(api), User(api)
    chat = ann.group(bob)
    added = ann.post(f"/chats/{chat['id']}/members", {"user_ids": [cat.id]})
    assert added.status_code == 200 and set(added.json()["member_ids"]) == {ann.id, bob.id,
                                                                         cat.id}
    assert cat.get(f"/chats/{chat['id']}").status_code == 200
    assert bob.post(f"/chats/{chat['id']}/members", {"user_ids": [eve.id]}).status_code == 403
    assert eve.post(f"/chats/{chat['id']}/members", {"user_ids": [eve.id]}).status_code == 403
    assert ann.post(f"/chats/{chat['id']}/members", {"user_ids": [99999999]}).status_code == 400
    assert ann.post(f"/chats/{chat['id']}/members", {"user_ids": []}).status_code == 400
    assert bob.delete(f"/chats/{chat['id']}/members/{cat.id}").status_code == 403
    assert cat.delete(f"/chats/{chat['id']}/members/{cat.id}").status_code == 204  # leave
    assert cat.get(f"/chats/{chat['id']}").status_code == 403
    assert cat.get("/chats").json() == []
    assert ann.delete(f"/chats/{chat['id']}/members/{bob.id}").status_code == 204
    assert bob.get("/messages", chat_id=chat["id"]).status_code == 403
    assert ann.delete(f"/chats/{chat['id']}/members/{ann.id}").status_code == 400
    assert ann.delete(f"/chats/{chat['id']}/members/{eve.id}").status_code == 404
    assert [m["id"] for m in ann.get(f"/chats/{chat['id']}/members").json()] == [ann.id]


def test_delete_chat_hides_it_and_its_messages(api: Api) -> None:
    ann, bob = User(api), User(api)
    chat = ann.group(bob)
    message = bob.say(chat["id"], "soon gone")
    assert bob.delete(f"/chats/{chat['id']}").status_code == 403
    deleted = ann.delete(f"/chats/{chat['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    for user in (ann, bob):
        assert user.get(f"/chats/{chat['id']}").status_code == 404
        assert user.get("/messages", chat_id=chat["id"]).status_code == 404
        assert user.get(f"/messages/{message['id']}").status_code == 404
        assert user.get("/chats").json() == []
    assert bob.post("/messages", {"chat_id": chat["id"], "type": "text",
                                  "content": "hello?"}).status_code == 404
    assert ann.delete(f"/chats/{chat['id']}").status_code == 404
    direct = ann.post("/chats", {"is_group": False, "member_ids": [bob.id]}).json()
    assert bob.delete(f"/chats/{direct['id']}").status_code == 204


def test_chat_writes_need_auth_and_idempotency_key(api: Api) -> None:
    ann, bob = User(api), User(api)
    assert api.post("/chats", {"title": "x", "is_group": True, "member_ids": []}).status_code \
        == 401
    assert ann.post("/chats", {"title": "x", "is_group": True, "member_ids": [bob.id]},
                    key=None).status_code == 400
    chat = ann.group(bob)
    assert ann.delete(f"/chats/{chat['id']}", key=None).status_code == 400
    key = "same-key"
    first = ann.post("/chats", {"title": "k", "is_group": True, "member_ids": []}, key=key)
    assert first.status_code == 201
    replay = ann.post("/chats", {"title": "k", "is_group": True, "member_ids": []}, key=key)
    assert replay.status_code == 409 and replay.json()["original_status"] == 201
    assert replay.headers["Location"] == f"/api/v1/chats/{first.json()['id']}"
    other_user = bob.post("/chats", {"title": "k", "is_group": True, "member_ids": []}, key=key)
    assert other_user.status_code == 201, "keys are scoped to the caller"
