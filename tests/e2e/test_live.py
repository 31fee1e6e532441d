"""Live delivery over real sockets: members only, joins and leaves, resume by cursor."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import nats
from websockets.asyncio.client import connect

from gateway.protocol import MAX_CURSOR
from parley.stack import Stack
from shared.settings import Settings
from tests.e2e.client import Api, User
from tests.e2e.sockets import TIMEOUT, frames, next_is, opened, run, synced, ws_url


def test_members_get_messages_exactly_as_rest_returns_them(api: Api, stack: Stack) -> None:
    ann, bob, eve = User(api, "Ann"), User(api, "Bob"), User(api, "Eve")
    chat = ann.group(bob)["id"]

    async def scenario() -> None:
        sockets = [await opened(stack, u) for u in (ann, bob, eve)]
        await synced(sockets[0], ann, chat, sockets[1])
        sent = ann.say(chat, "hello live")
        edited = ann.patch(f"/messages/{sent['id']}", {"content": "edited live"}).json()
        for ws in sockets[:2]:
            created, updated = await frames(ws, 2)
            assert created["event"] == "message.created" and created["data"] == sent
            assert updated["event"] == "message.updated" and updated["data"] == edited
            assert int(updated["cursor"]) > int(created["cursor"])
        own = eve.group(title="eve's own")  # a marker: eve's first frame must be this one
        (first,) = await frames(sockets[2], 1)
        assert first["event"] == "chat.created" and first["data"]["id"] == own["id"]
        for ws in sockets:
            await ws.close()

    run(scenario())


def test_joining_starts_and_leaving_stops_delivery(api: Api, stack: Stack) -> None:
    ann, bob, cat = User(api, "Ann"), User(api, "Bob"), User(api, "Cat")
    chat = ann.group(bob)["id"]

    async def scenario() -> None:
        ws_cat, ws_bob = await opened(stack, cat), await opened(stack, bob)
        await synced(ws_bob, ann, chat)
        before = ann.say(chat, "before cat")
        assert ann.post(f"/chats/{chat}/members", {"user_ids": [cat.id]}).status_code == 200
        after = ann.say(chat, "after cat joined")
        added, system, message = await frames(ws_cat, 3)
        assert added["event"] == "chat.member_added" and added["data"]["user_ids"] == [cat.id]
        assert system["data"]["type"] == "system"
        assert message["data"] == after
        # bob, a member all along, gets the message cat missed, then the very frames cat got
        first, *rest = await frames(ws_bob, 4)
        assert (first["event"], first["data"]) == ("message.created", before)
        assert rest == [added, system, message]
        assert ann.delete(f"/chats/{chat}/members/{bob.id}").status_code == 204
        # bob sees his removal; the system message written after it is already not his
        (removed,) = await frames(ws_bob, 1)
        assert removed["event"] == "chat.member_removed" and removed["data"]["user_id"] == bob.id
        ann.say(chat, "bob is gone")
        assert ann.delete(f"/chats/{chat}").status_code == 204
        events = [f["event"] for f in await frames(ws_cat, 4)]
        assert events == ["chat.member_removed", "message.created", "message.created",
                          "chat.deleted"]
        # nothing of the chat after bob's removal: the next thing bob gets is his own chat
        await next_is(ws_bob, "chat.created", bob.group(title="bob's own")["id"])
        new = ann.group(cat)  # a new chat: cat hears of it, the deleted one stays silent
        await next_is(ws_cat, "chat.created", new["id"])
        for ws in (ws_cat, ws_bob):
            await ws.close()

    run(scenario())


def test_resume_with_cursor_delivers_exactly_what_was_missed(api: Api, stack: Stack) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]

    async def scenario() -> None:
        ws = await opened(stack, bob)
        seen = await synced(ws, ann, chat)
        await ws.close()
        missed = [ann.say(chat, f"missed {i}") for i in range(5)]
        ws = await opened(stack, bob, cursor=seen)
        replayed = await frames(ws, 5)
        assert [f["data"] for f in replayed] == missed
        live = ann.say(chat, "live again")
        (after,) = await frames(ws, 1)
        assert after["data"] == live
        marker = ann.say(chat, "and nothing twice")  # no copy of a replayed frame before it
        await next_is(ws, "message.created", marker["id"])
        await ws.close()

    run(scenario())


def test_resume_replays_membership_as_it_was(api: Api, stack: Stack) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    later = ann.group(title="joined later")["id"]

    async def scenario() -> None:
        ws = await opened(stack, bob)
        mark = await synced(ws, ann, chat)
        await ws.close()
        ann.say(later, "before bob joined")  # not for bob
        ann.say(chat, "for bob")
        ann.post(f"/chats/{later}/members", {"user_ids": [bob.id]})
        ann.say(later, "after bob joined")
        ann.delete(f"/chats/{chat}/members/{bob.id}")
        ann.say(chat, "after bob left")  # not for bob
        ws = await opened(stack, bob, cursor=mark)
        got = [(f["event"], f["data"].get("content")) for f in await frames(ws, 5)]
        assert got == [("message.created", "for bob"), ("chat.member_added", None),
                       ("message.created", "members added"),
                       ("message.created", "after bob joined"),
                       ("chat.member_removed", None)]
        # "after bob left" is not replayed: the next frame is one of a chat bob is still in
        await next_is(ws, "message.created", ann.say(later, "marker")["id"])
        await ws.close()

    run(scenario())


def test_cursor_older_than_the_stream_gets_resync_required(api: Api, stack: Stack) -> None:
    settings = Settings.from_env(stack.env)
    ann = User(api)

    async def scenario() -> None:
        # Traffic that is in the stream before it is cut: a write answers once the read models
        # have it, and it is published just after, so wait until this socket has seen it.
        ws = await opened(stack, ann)
        traffic = ann.group(title="some traffic")["id"]
        await synced(ws, ann, traffic)
        await ws.close()
        nc = await nats.connect(settings.nats_url)
        js = nc.jetstream()
        info = await js.stream_info(settings.nats_stream)
        # Retention in fast-forward: drop every message but the newest.
        await js.purge_stream(settings.nats_stream, seq=info.state.last_seq)
        await nc.close()
        ws = await opened(stack, ann, cursor="1")
        (frame,) = await frames(ws, 1)
        assert frame["event"] == "resync.required"
        sent = ann.say(ann.group(title="after resync")["id"], "live")
        events = await frames(ws, 3)
        assert [event["event"] for event in events] == [
            "chat.created", "message.created", "message.created"]
        assert events[-1]["data"] == sent
        await ws.close()

    run(scenario())


def test_cursor_the_stream_never_held_gets_resync_required(api: Api, stack: Stack) -> None:
    """A well-formed cursor beyond the stream (say, from before the stream was recreated)."""
    ann = User(api)
    chat = ann.group(title="after a cursor from elsewhere")["id"]

    async def scenario() -> None:
        ws = await opened(stack, ann, cursor=str(MAX_CURSOR))
        (frame,) = await frames(ws, 1)
        assert frame["event"] == "resync.required"
        sent = ann.say(chat, "live")
        while (frame := (await frames(ws, 1))[0])["data"] != sent:
            assert frame["event"] != "resync.required", frame
        await ws.close()

    run(scenario())


def test_malformed_cursor_is_refused(api: Api, stack: Stack) -> None:
    async def scenario() -> int:
        ws = await connect(ws_url(stack, token=User(api).token, cursor="abc"))
        try:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        except Exception:
            pass
        assert ws.close_code is not None
        return ws.close_code

    assert run(scenario()) == 4400


def test_a_rename_reaches_the_members_as_chat_updated(api: Api, stack: Stack) -> None:
    ann, bob, eve = User(api, "Ann"), User(api, "Bob"), User(api, "Eve")
    chat = ann.group(bob)["id"]

    async def scenario() -> None:
        ws_bob, ws_eve = await opened(stack, bob), await opened(stack, eve)
        await synced(ws_bob, ann, chat)
        renamed = ann.patch(f"/chats/{chat}", {"title": "Renamed"})
        assert renamed.status_code == 200, renamed.text
        updated, system = await frames(ws_bob, 2)
        assert updated["event"] == "chat.updated"
        assert updated["data"] == {"id": chat, "title": "Renamed"}
        assert system["event"] == "message.created" and system["data"]["type"] == "system"
        # not a member: eve's next frame is one of her own chat's
        await next_is(ws_eve, "chat.created", eve.group(title="eve's own")["id"])
        for ws in (ws_bob, ws_eve):
            await ws.close()

    run(scenario())


def test_a_user_gets_its_own_registration_and_nobody_elses(api: Api, stack: Stack,
                                                            settings: Settings) -> None:
    async def scenario() -> None:
        nc = await nats.connect(settings.nats_url)
        before = (await nc.jetstream().stream_info(settings.nats_stream)).state.last_seq
        await nc.close()
        ann = User(api, "Ann")  # registered after `before`: a resume from there replays it
        ws = await opened(stack, ann, cursor=str(before))
        frame = await ws.recv()
        assert frame["event"] == "user.registered", frame
        profile = ann.get(f"/users/{ann.id}").json()
        del profile["online"], profile["last_seen_at"]  # presence: not part of the event
        assert frame["data"] == profile
        assert int(frame["cursor"]) > before
        ws.registration_seen = True
        User(api, "Bob")  # someone else registers: not ann's business
        await next_is(ws, "chat.created", ann.group(title="ann's own")["id"])
        await ws.close()

    run(scenario())


def test_a_resume_while_writes_keep_arriving_has_no_gap_and_no_duplicate(
        api: Api, stack: Stack) -> None:
    """The replay and the live feed meet while a writer keeps posting: every message after the
    cursor arrives once, in order, whether it was written before, during or after the replay."""
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    posted: list[dict[str, Any]] = []
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            posted.append(ann.say(chat, f"message {len(posted)}"))

    async def until(condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + TIMEOUT * 4
        while not condition():
            assert time.monotonic() < deadline, len(posted)
            await asyncio.sleep(0.01)

    async def scenario() -> None:
        ws = await opened(stack, bob)
        seen = await synced(ws, ann, chat)
        await ws.close()
        writing = threading.Thread(target=writer)
        writing.start()
        try:
            await until(lambda: len(posted) >= 60)  # missed while away
            ws = await opened(stack, bob, cursor=seen)
            at_open = len(posted)
            await until(lambda: len(posted) >= at_open + 40)  # written during and after
        finally:
            stop.set()
            await asyncio.to_thread(writing.join, 60)
        got = await frames(ws, len(posted))
        assert [f["data"] for f in got] == posted
        assert [int(f["cursor"]) for f in got] == sorted({int(f["cursor"]) for f in got})
        await next_is(ws, "message.created", ann.say(chat, "the end")["id"])  # nothing twice
        await ws.close()

    run(scenario())
