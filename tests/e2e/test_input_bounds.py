"""Nothing a client sends stops Parley (CONTRACT.md "Input bounds"), over real HTTP."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from domain.app import Claim, Parley
from parley.embedded import wait_for
from parley.stack import Stack
from shared.settings import Settings
from tests.e2e.client import Api, User, new_key, unique_email


def raw_post(api: Api, path: str, body: bytes, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json", "Idempotency-Key": new_key()}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return api.http.post(path, content=body, headers=headers)


def assert_read_your_writes(api: Api) -> None:
    """The projector is alive and current: another user's write waits for it and sees it."""
    ann, bob = User(api), User(api)
    response = ann.post("/chats", {"title": "alive", "is_group": True, "member_ids": [bob.id]})
    assert response.status_code == 201
    assert response.headers["X-Consistency"] == "read-your-writes"
    assert bob.get(f"/chats/{response.json()['id']}").status_code == 200


@pytest.mark.parametrize("display_name", ["A\\u0000B", "A\\u0085B", "A\\ud800B", "\\u001b[31m"])
def test_a_control_character_or_lone_surrogate_is_400_and_nothing_is_stored(
        api: Api, display_name: str) -> None:
    email = unique_email()
    # written out by hand: a JSON encoder would escape or refuse the lone surrogate
    body = ('{"email": "' + email + '", "password": "securePassword123", "display_name": "'
            + display_name + '"}').encode()
    response = raw_post(api, "/auth/register", body)
    assert response.status_code == 400, response.text
    assert response.json()["detail"]
    login = api.post("/auth/login", {"email": email, "password": "securePassword123"})
    assert login.status_code == 401  # nothing was registered
    assert_read_your_writes(api)


def test_every_client_string_refuses_a_nul(api: Api) -> None:
    ann, bob = User(api), User(api)
    chat = ann.group(bob)
    message = ann.say(chat["id"], "fine")
    nul = "x\x00y"
    refused = [
        api.post("/auth/register", {"email": unique_email(), "password": "securePassword123",
                                    "display_name": "A", "avatar_url": f"https://e.x/{nul}"}),
        api.post("/auth/login", {"email": f"a{nul}@example.com", "password": nul}),
        ann.post("/chats", {"title": nul, "is_group": True, "member_ids": [bob.id]}),
        ann.patch(f"/chats/{chat['id']}", {"title": nul}),
        ann.post("/messages", {"chat_id": chat["id"], "type": "text", "content": nul}),
        ann.patch(f"/messages/{message['id']}", {"content": nul}),
        ann.post("/attachments", {"filename": f"{nul}.opus", "content_type": "audio/opus"}),
        api.http.post("/messages", json={"chat_id": chat["id"], "type": "text", "content": "ok"},
                      headers={"Authorization": f"Bearer {ann.token}",
                               "Idempotency-Key": b"k\x9bey"}),  # a C1 control, as latin-1
    ]
    assert [r.status_code for r in refused] == [400] * len(refused), [r.text for r in refused]
    assert all(r.json()["detail"] for r in refused)
    assert [m["content"] for m in bob.get("/messages", chat_id=chat["id"]).json()
            if m["type"] == "text"] == ["fine"]


@pytest.mark.parametrize(("body", "detail"), [
    (b"[" * 50_000, "not valid JSON"),  # was a 500: RecursionError in the json module
    (b'{"a":' * 33 + b"1" + b"}" * 33, "nested deeper than 32 levels"),
    (b'{"email": "\\ud800"}', "not valid JSON"),
])
def test_hostile_json_is_400(api: Api, body: bytes, detail: str) -> None:
    response = raw_post(api, "/auth/register", body)
    assert response.status_code == 400 and detail in response.json()["detail"]


def test_a_declared_oversized_body_is_refused_before_it_is_sent(stack: Stack) -> None:
    """413 arrives while the client is still sending: the server never reads the rest."""
    url = urlsplit(stack.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(b"POST /api/v1/auth/register HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nIdempotency-Key: " +
                     new_key().encode() + b"\r\nContent-Length: 10000000\r\n\r\n" +
                     b" " * 200_000)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


def test_ids_are_strict(api: Api) -> None:
    ann = User(api)
    for raw in ("%C2%B2", "%D9%A7", "+1", "1_0", "9223372036854775808"):
        response = api.http.get(f"/messages?chat_id={raw}",
                                headers={"Authorization": f"Bearer {ann.token}"})
        assert response.status_code == 400, (raw, response.text)
        assert ann.get(f"/chats/{raw}").status_code == 400


def test_a_voice_attachment_id_of_another_kind_of_record_is_400(api: Api) -> None:
    ann, bob = User(api), User(api)
    chat = ann.group(bob)
    claims = ann.token.split(".")[1]
    session_id = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["sid"]
    response = ann.post("/messages", {"chat_id": chat["id"], "type": "voice", "payload": {
        "attachment_id": session_id, "duration_ms": 1000, "codec": "opus"}})
    assert response.status_code == 400, response.text  # was a 500 (an assert in the store)


def test_a_min_position_beyond_the_log_is_served_at_once(api: Api) -> None:
    """No write returned such a position: waiting out CONSISTENCY_TIMEOUT (10 s here) for it
    would only let one client hold a connection and a request slot for nothing."""
    ann = User(api)
    started = time.monotonic()
    response = api.get("/users/me", token=ann.token, X_Min_Position="9000000000000000000")
    assert response.status_code == 200 and response.json()["id"] == ann.id
    assert time.monotonic() - started < 5


def test_a_deleted_direct_chat_can_be_created_again(api: Api) -> None:
    ann, bob = User(api), User(api)
    first = ann.post("/chats", {"is_group": False, "member_ids": [bob.id]})
    assert first.status_code == 201
    assert bob.delete(f"/chats/{first.json()['id']}").status_code == 204
    again = bob.post("/chats", {"is_group": False, "member_ids": [ann.id]})
    assert again.status_code == 201, again.text
    assert again.json()["id"] != first.json()["id"]
    existing = ann.post("/chats", {"is_group": False, "member_ids": [bob.id]})
    assert existing.status_code == 200 and existing.json()["id"] == again.json()["id"]
    assert [c["id"] for c in ann.get("/chats").json()] == [again.json()["id"]]


def test_a_retried_write_gets_its_keys_409_even_when_the_target_is_gone(api: Api) -> None:
    ann, bob = User(api), User(api)
    chat = ann.group(bob)
    message = bob.say(chat["id"], "to edit")
    edit_key, delete_key = new_key(), new_key()
    assert bob.patch(f"/messages/{message['id']}", {"content": "edited"},
                     key=edit_key).status_code == 200
    assert ann.delete(f"/chats/{chat['id']}", key=delete_key).status_code == 204
    retried = ann.delete(f"/chats/{chat['id']}", key=delete_key)
    assert retried.status_code == 409, retried.text
    assert retried.json()["original_status"] == 204
    edited_again = bob.patch(f"/messages/{message['id']}", {"content": "edited"}, key=edit_key)
    assert edited_again.status_code == 409 and edited_again.json()["original_status"] == 200
    # a fresh key still gets the refusal itself
    assert ann.delete(f"/chats/{chat['id']}").status_code == 404


def test_logout_is_not_204_before_its_tokens_are_refused(api: Api, stack: Stack) -> None:
    tokens = api.register()["tokens"]
    projector = stack.processes["projector"]
    projector.send_signal(signal.SIGSTOP)  # the read models stop moving
    try:
        pending = api.post("/auth/logout", {"refresh_token": tokens["refresh_token"]}, key=None)
    finally:
        projector.send_signal(signal.SIGCONT)
    assert pending.status_code == 503, pending.text  # was 204 while the token still worked
    assert pending.headers["Retry-After"]
    again = api.post("/auth/logout", {"refresh_token": tokens["refresh_token"]}, key=None)
    assert again.status_code == 204
    assert api.get("/users/me", token=tokens["access_token"]).status_code == 401


@pytest.fixture
def parley(stack: Stack) -> Iterator[Parley]:
    app = Parley(env=Settings.from_env(stack.env).eventsourcing_env())
    yield app
    app.close()


def test_a_nul_an_older_version_stored_projects_live_and_after_a_restart(
        api: Api, stack: Stack, parley: Parley) -> None:
    outcome = parley.register_user(Claim("anonymous", new_key(), "fp"), unique_email(), "hash",
                                   "Old\x00Name", None, "t")
    user = outcome.value[0].number
    assert_read_your_writes(api)  # the projector went past it (it used to exit here for good)
    viewer = User(api)
    assert viewer.get(f"/users/{user}").json()["display_name"] == "Old\ufffdName"

    old = stack.processes["projector"]
    assert isinstance(old, subprocess.Popen)
    old.terminate()
    assert old.wait(timeout=30) == 0
    # `parley up`'s supervisor starts the next one
    wait_for(lambda: stack.processes["projector"].pid != old.pid, 60, "projector restart")
    assert_read_your_writes(api)
