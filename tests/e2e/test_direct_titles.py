"""A direct chat's title is the other member's name: in REST answers and in live frames alike."""

from __future__ import annotations

from parley.stack import Stack
from tests.e2e.client import Api, User
from tests.e2e.sockets import frames, opened, run


def direct(user: User, other: User) -> dict[str, object]:
    response = user.post("/chats", {"is_group": False, "member_ids": [other.id]})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_each_member_sees_the_others_name_over_rest(api: Api) -> None:
    ann, bob = User(api, "Ann Direct"), User(api, "Bob Direct")
    chat = direct(ann, bob)
    assert chat["title"] == "Bob Direct"
    for viewer, other in ((ann, bob), (bob, ann)):
        listed = [c for c in viewer.get("/chats").json() if c["id"] == chat["id"]]
        assert [c["title"] for c in listed] == [other.name]
        assert viewer.get(f"/chats/{chat['id']}").json()["title"] == other.name


def test_live_chat_created_of_a_direct_chat_names_the_other_member(api: Api,
                                                                    stack: Stack) -> None:
    ann, bob = User(api, "Ann Live"), User(api, "Bob Live")

    async def scenario() -> None:
        ws_ann, ws_bob = await opened(stack, ann), await opened(stack, bob)
        chat = direct(ann, bob)
        cursor = ""
        for ws, other in ((ws_ann, bob), (ws_bob, ann)):
            (created,) = await frames(ws, 1)
            assert created["event"] == "chat.created" and created["data"]["id"] == chat["id"]
            assert created["data"]["title"] == other.name
            assert created["data"]["is_group"] is False
            cursor = created["cursor"]
        # a resume from just before it replays it rendered the same way
        resumed = await opened(stack, bob, str(int(cursor) - 1))
        (replayed,) = await frames(resumed, 1)
        assert replayed["cursor"] == cursor and replayed["data"]["title"] == ann.name
        for ws in (ws_ann, ws_bob, resumed):
            await ws.close()

    run(scenario())
