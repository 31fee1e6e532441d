"""`/ws` against the running system, as a browser or an app uses it: who may connect, which
frames arrive, and when the server closes (CONTRACT.md, "WebSocket /ws")."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nats
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from gateway.protocol import MAX_CURSOR
from parley.stack import Stack
from shared import subjects
from shared.jwt.tokens import TokenService
from shared.settings import Settings
from tests.e2e.client import Api
from tests.e2e.sockets import (
    TIMEOUT,
    close_code,
    next_frame,
    own_registration,
    pong,
    refused,
    run,
    ws_url,
)


def new_user(api: Api) -> tuple[int, str]:
    body = api.register()
    return body["user"]["id"], body["tokens"]["access_token"]


async def frame_at(ws: ClientConnection, sequence: int, user: int) -> dict[str, Any]:
    """The frame with this cursor, after any earlier ones, which may only be the user's own
    `user.registered` (the projector publishes it after registration, perhaps after we connect).
    """
    while (frame := await next_frame(ws))["cursor"] != str(sequence):
        assert own_registration(frame, user), frame
    return frame


async def publish(settings: Settings, user_id: int, event: str, data: dict[str, Any]) -> int:
    """Put a message on the user's subject as the projector would; returns its stream sequence.
    (No endpoint changes a profile yet, so this stands in for a `user.*` event.)"""
    nc = await nats.connect(settings.nats_url)
    try:
        body = json.dumps({"event": event, "data": data, "position": 0}).encode()
        ack = await nc.jetstream().publish(subjects.user(user_id), body,
                                           stream=settings.nats_stream)
        return ack.seq
    finally:
        await nc.close()


# -- who may connect ----------------------------------------------------------------------

def test_no_token_is_closed_4401_before_any_frame(stack: Stack) -> None:
    assert run(refused(ws_url(stack))) == 4401


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."])
def test_a_bad_token_is_closed_4401(stack: Stack, token: str) -> None:
    assert run(refused(ws_url(stack, token=token))) == 4401
    assert run(refused(ws_url(stack), additional_headers={"Authorization": f"Bearer {token}"})) \
        == 4401


def test_a_refresh_token_is_not_an_access_token(api: Api, stack: Stack) -> None:
    refresh = api.register()["tokens"]["refresh_token"]
    assert run(refused(ws_url(stack, token=refresh))) == 4401


def test_a_foreign_origin_is_closed_4403(api: Api, stack: Stack) -> None:
    _, token = new_user(api)
    assert run(refused(ws_url(stack, token=token), origin=Origin("https://evil.example"))) == 4403
    # Origin is checked first: a foreign page learns nothing about the token it sent
    assert run(refused(ws_url(stack, token="garbage"),
                       origin=Origin("https://evil.example"))) == 4403


def test_same_host_origin_and_no_origin_are_allowed(api: Api, stack: Stack) -> None:
    user, token = new_user(api)
    same_host = Origin(f"http://{urlsplit(stack.base_url).netloc}")

    async def scenario() -> None:
        for origin in (same_host, None):
            async with connect(ws_url(stack, token=token), origin=origin) as ws:
                assert await pong(ws, user) == {"event": "pong"}

    run(scenario())


def test_query_token_connects(api: Api, stack: Stack) -> None:
    user, token = new_user(api)

    async def scenario() -> None:
        async with connect(ws_url(stack, token=token)) as ws:
            assert await pong(ws, user) == {"event": "pong"}

    run(scenario())


def test_authorization_header_connects(api: Api, stack: Stack) -> None:
    user, token = new_user(api)

    async def scenario() -> None:
        async with connect(ws_url(stack),
                           additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            assert await pong(ws, user) == {"event": "pong"}

    run(scenario())


def test_the_query_token_never_reaches_the_log(api: Api, stack: Stack) -> None:
    log_file = Path(stack.env["PARLEY_DATA_DIR"]) / "logs" / "api.log"
    assert log_file.exists(), f"the stack fixture logs to {log_file}"
    user, token = new_user(api)

    async def scenario() -> None:
        async with connect(ws_url(stack, token=token)) as ws:
            await pong(ws, user)

    run(scenario())
    text = log_file.read_text(errors="replace")
    assert token not in text
    assert '"WebSocket /ws?token=[REDACTED]" [accepted]' in text


def test_a_cursor_that_is_not_plain_ascii_digits_in_range_is_closed_4400(api: Api,
                                                                         stack: Stack) -> None:
    """Never a 500 at the handshake ("²".isdigit() is true), never read as another number."""
    _, token = new_user(api)
    bad = ["²", "\uff11", "\u0661", "1_000", "-1", "+1", " 1", "1 ", "0x10", "1e3", "",
           str(MAX_CURSOR + 1), "9" * 5000]

    async def scenario() -> None:
        for cursor in bad:
            assert await refused(ws_url(stack, token=token, cursor=cursor)) == 4400, cursor
        # one cursor, not a choice of several
        twice = f"{ws_url(stack, token=token, cursor='1')}&cursor=2"
        assert await refused(twice) == 4400

    run(scenario())


# -- frames ---------------------------------------------------------------------------------

def test_own_events_arrive_and_nobody_else_gets_them(api: Api, stack: Stack,
                                                     settings: Settings) -> None:
    alice, alice_token = new_user(api)
    bob, bob_token = new_user(api)
    profile = {"id": alice, "display_name": "Alice", "avatar_url": None}

    async def scenario() -> None:
        async with connect(ws_url(stack, token=alice_token)) as a, \
                connect(ws_url(stack, token=bob_token)) as b:
            sequence = await publish(settings, alice, "user.updated", profile)
            assert await frame_at(a, sequence, alice) == {"event": "user.updated", "data": profile,
                                                   "cursor": str(sequence)}
            # Frames arrive in stream order, so had Alice's event reached Bob it would have come
            # before his own later one (frame_at fails on anything but his registration).
            later = await publish(settings, bob, "user.updated", {"id": bob})
            assert (await frame_at(b, later, bob))["data"] == {"id": bob}
            later_for_alice = await publish(settings, alice, "user.updated", {"id": alice})
            assert (await frame_at(a, later_for_alice, alice))["data"] == {"id": alice}

    run(scenario())


def test_every_connection_of_the_user_gets_the_event(api: Api, stack: Stack,
                                                      settings: Settings) -> None:
    user, token = new_user(api)

    async def scenario() -> None:
        async with connect(ws_url(stack, token=token)) as phone, \
                connect(ws_url(stack, token=token)) as laptop:
            sequence = await publish(settings, user, "user.updated", {"id": user})
            for ws in (phone, laptop):
                assert (await frame_at(ws, sequence, user))["data"] == {"id": user}

    run(scenario())


def test_unknown_types_are_ignored_and_malformed_frames_closed_4400(api: Api,
                                                                    stack: Stack) -> None:
    user, token = new_user(api)

    async def scenario() -> None:
        async with connect(ws_url(stack, token=token)) as ws:
            await ws.send(json.dumps({"type": "typing", "chat_id": 1}))
            assert await pong(ws, user) == {"event": "pong"}
        for bad in ("{not json", "[1, 2]", json.dumps({"kind": "ping"}), b"\xff\xfe"):
            async with connect(ws_url(stack, token=token)) as ws:
                await ws.send(bad)
                assert await close_code(ws, user) == 4400, bad

    run(scenario())


def test_hostile_frames_are_closed_4400_or_4401_never_1011(api: Api, stack: Stack) -> None:
    """Deep nesting, huge numbers, JSON that is not an object: the parser's bounds hold and
    the session says why it closes (1011 would be a server error)."""
    user, token = new_user(api)
    malformed = ["[" * 50_000, "{" * 30_000, json.dumps({"type": "ping", "x": [[[1]]]})[:-1],
                 '{"type": "ping", "x": ' + "9" * 60_000 + "}", "null", '"ping"', "1e999999",
                 json.dumps({"type": 1}), json.dumps({"type": None}), "{}", "\ufeff{}",
                 '{"type": "\\ud800"}']
    unauthorized = [json.dumps({"type": "auth", "token": 1}), json.dumps({"type": "auth"}),
                    json.dumps({"type": "auth", "token": "²" * 20_000}, ensure_ascii=False),
                    json.dumps({"type": "auth", "token": {"nested": [token]}})]

    async def scenario() -> None:
        for frames, code in ((malformed, 4400), (unauthorized, 4401)):
            for bad in frames:
                async with connect(ws_url(stack, token=token)) as ws:
                    await ws.send(bad)
                    assert await close_code(ws, user) == code, bad[:40]
        async with connect(ws_url(stack, token=token)) as ws:  # these are merely unknown types
            for odd in ({"type": "ping\u0000"}, {"type": "x" * 60_000},
                        {"type": "typing", "n": 1e308, "deep": [[[[{}]]]]}):
                await ws.send(json.dumps(odd))
            assert await pong(ws, user) == {"event": "pong"}

    run(scenario())


def test_a_frame_over_64_kib_is_closed_1009(api: Api, stack: Stack) -> None:
    user, token = new_user(api)

    async def scenario() -> None:
        async with connect(ws_url(stack, token=token)) as ws:
            await ws.send(json.dumps({"type": "ping", "pad": "x" * (64 * 1024)}))
            assert await close_code(ws, user) == 1009

    run(scenario())


def test_a_client_that_stops_reading_is_closed_4408_and_others_keep_up(
        api: Api, stack: Stack, settings: Settings) -> None:
    user, token = new_user(api)
    # 48 MB, sent uncompressed: far beyond what `slow` can be holding for it (the 1000-frame
    # outbox plus socket buffers of a few MB, its receive buffer being small), sent in chunks
    # that `fast` reads as they come, so only the client that stops reading falls behind
    count, chunk, pad = 3000, 100, "x" * 16_000

    async def scenario() -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        address = urlsplit(stack.base_url)
        await asyncio.get_running_loop().sock_connect(sock, (address.hostname, address.port))
        async with connect(ws_url(stack, token=token), sock=sock, max_queue=1,
                           compression=None) as slow, \
                connect(ws_url(stack, token=token), compression=None) as fast:
            nc = await nats.connect(settings.nats_url)
            received = 0
            try:
                for start in range(0, count, chunk):
                    for i in range(start, start + chunk):
                        body = {"event": "test.bulk", "data": {"i": i, "pad": pad},
                                "position": 0}
                        await nc.publish(subjects.user(user), json.dumps(body).encode())
                    while received < start + chunk:
                        frame = await next_frame(fast)
                        if own_registration(frame, user):
                            continue
                        assert frame["data"]["i"] == received
                        received += 1
                # on the same connection, so it is stored after all of them
                end = {"event": "test.last", "data": {}, "position": 0}
                last = (await nc.jetstream().publish(subjects.user(user),
                                                     json.dumps(end).encode())).seq
            finally:
                await nc.close()
            frame = await next_frame(fast)
            assert frame["event"] == "test.last" and frame["cursor"] == str(last)
            # the gateway has offered `slow` everything by now; it reads what was in flight
            late = 0
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(slow.recv(), TIMEOUT)
                    late += 1
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
            assert late < count

    run(scenario())


# -- tokens during the session ----------------------------------------------------------------

def test_auth_frame_with_a_bad_or_foreign_token_is_closed_4401(api: Api, stack: Stack) -> None:
    user, token = new_user(api)
    _, other = new_user(api)

    async def scenario() -> None:
        for frame in ({"type": "auth", "token": other}, {"type": "auth", "token": "garbage"},
                      {"type": "auth"}):
            async with connect(ws_url(stack, token=token)) as ws:
                await ws.send(json.dumps(frame))
                assert await close_code(ws, user) == 4401, frame

    run(scenario())


def test_expiry_closes_4401_unless_a_fresh_token_arrives(api: Api, stack: Stack,
                                                         settings: Settings) -> None:
    user, fresh = new_user(api)
    short_lived = TokenService(replace(settings, access_token_ttl=2))
    # issued first, so the refreshed socket's first deadline is no later than the other's
    refreshed_token, _ = short_lived.issue("access", user)
    expiring_token, _ = short_lived.issue("access", user)

    async def scenario() -> None:
        async with connect(ws_url(stack, token=refreshed_token)) as refreshed, \
                connect(ws_url(stack, token=expiring_token)) as expiring:
            started = time.monotonic()
            await refreshed.send(json.dumps({"type": "auth", "token": fresh}))
            assert await close_code(expiring, user) == 4401
            elapsed = time.monotonic() - started
            assert 1.0 <= elapsed <= 8.0, elapsed  # exp (<= 2 s) + the 5 s leeway
            # past its first token's expiry too, and still open
            assert await pong(refreshed, user) == {"event": "pong"}

    run(scenario())


def test_logout_closes_that_sessions_sockets_4401_and_no_other(api: Api, stack: Stack) -> None:
    registered = api.register()
    user, email, first = (registered["user"]["id"], registered["user"]["email"],
                          registered["tokens"])
    second = api.post("/auth/login", {"email": email, "password": "securePassword123"}).json()

    async def scenario() -> None:
        async with connect(ws_url(stack, token=first["access_token"])) as ended, \
                connect(ws_url(stack, token=second["access_token"])) as other:
            assert await pong(ended, user) == {"event": "pong"}
            assert await pong(other, user) == {"event": "pong"}
            response = await asyncio.to_thread(
                api.post, "/auth/logout", {"refresh_token": first["refresh_token"]}, key=None)
            assert response.status_code == 204
            with pytest.raises(ConnectionClosed) as closed:
                while True:  # nothing but the user's own registration may come before
                    frame = json.loads(await asyncio.wait_for(ended.recv(), TIMEOUT))
                    assert own_registration(frame, user), frame
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == \
                (4401, "session ended (logged out)")
            # the other login's socket stays open and never sees the gateway's own event
            assert await pong(other, user) == {"event": "pong"}
        # and the ended session's token cannot connect again
        assert await refused(ws_url(stack, token=first["access_token"])) == 4401

    run(scenario())


def test_auth_frame_with_an_ended_sessions_token_is_closed_4401(api: Api, stack: Stack) -> None:
    registered = api.register()
    user, email, first = (registered["user"]["id"], registered["user"]["email"],
                          registered["tokens"])
    second = api.post("/auth/login", {"email": email, "password": "securePassword123"}).json()
    assert api.post("/auth/logout", {"refresh_token": first["refresh_token"]},
                    key=None).status_code == 204

    async def scenario() -> None:
        async with connect(ws_url(stack, token=second["access_token"])) as ws:
            assert await pong(ws, user) == {"event": "pong"}
            await ws.send(json.dumps({"type": "auth", "token": first["access_token"]}))
            assert await close_code(ws, user) == 4401

    run(scenario())
