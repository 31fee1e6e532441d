"""The seed's flows through every entry point of a cluster: the router, and each command API
and query API addressed directly; live delivery across processes."""

from __future__ import annotations

import httpx

from parley.cli import _listeners
from parley.stack import Stack
from tests.cluster.conftest import direct, via
from tests.e2e.client import Api, User, unique_email
from tests.e2e.sockets import frames, opened, run, synced
from tests.e2e.test_attachments import AUDIO, presign, upload, voice

COMMAND_APIS = ("command-api-1", "command-api-2")
QUERY_APIS = ("query-api-1", "query-api-2")


def entry(cluster: Stack, name: str) -> Api:
    return Api(cluster.listeners[name])


def test_register_login_and_me_through_every_entry_point(cluster: Stack, api: Api) -> None:
    for writer in ("router", *COMMAND_APIS):
        email = unique_email()
        registered = entry(cluster, writer).register(email=email)
        login = entry(cluster, writer).post("/auth/login", {"email": email,
                                                            "password": "securePassword123"})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        for reader in ("router", *QUERY_APIS):
            me = entry(cluster, reader).get("/users/me", token=token)
            assert me.status_code == 200, me.text
            assert me.json() == registered["user"]


def test_chats_messages_and_voice_across_processes(cluster: Stack, api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = via(ann, entry(cluster, "command-api-1")).group(bob)
    assert via(bob, entry(cluster, "query-api-2")).get(f"/chats/{chat['id']}").status_code == 200
    sent = via(bob, entry(cluster, "command-api-2")).say(chat["id"], "hello from 2")
    edited = via(bob, entry(cluster, "command-api-1")).patch(
        f"/messages/{sent['id']}", {"content": "edited on 1"})
    assert edited.status_code == 200, edited.text
    presigned = presign(via(ann, entry(cluster, "command-api-2")))
    assert upload(presigned).status_code in (200, 201, 204)
    spoken = voice(ann, chat["id"], presigned["attachment_id"])  # through the router
    assert spoken.status_code == 201, spoken.text
    for reader in ("router", *QUERY_APIS):
        listed = via(bob, entry(cluster, reader)).get("/messages", chat_id=chat["id"]).json()
        assert [m["id"] for m in listed[:2]] == [spoken.json()["id"], sent["id"]]
        assert listed[1]["content"] == "edited on 1"
        chats = via(ann, entry(cluster, reader)).get("/chats").json()
        assert chat["id"] in [c["id"] for c in chats]
    download = via(bob, entry(cluster, "query-api-1")).get(
        f"/attachments/{presigned['attachment_id']}")
    assert httpx.get(download.json()["url"]).content == AUDIO


def test_the_router_serves_the_docs_and_the_web_client_and_hides_the_internals(
        cluster: Stack) -> None:
    assert httpx.get(f"{cluster.base_url}/openapi.json").status_code == 200
    page = httpx.get(f"{cluster.base_url}/app/")  # the web client, from the query APIs
    assert page.status_code == 200 and "text/html" in page.headers["content-type"], page.text
    assert httpx.get(f"{cluster.base_url}/app/app.js").status_code == 200
    assert httpx.get(f"{cluster.base_url}/healthz").json() == {"status": "ok"}
    for internal in ("/readyz", "/metrics"):
        hidden = httpx.get(f"{cluster.base_url}{internal}")
        assert (hidden.status_code, hidden.json()) == (404, {"detail": "Not Found"})


def test_a_socket_on_one_gateway_gets_what_another_command_api_took(
        cluster: Stack, api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]

    async def scenario() -> None:
        on_gateway_1 = await opened(direct(cluster, "gateway-1"), bob)
        on_router = await opened(cluster, bob)
        await synced(on_gateway_1, ann, chat, on_router)
        sent = via(ann, entry(cluster, "command-api-2")).say(chat, "across processes")
        for socket in (on_gateway_1, on_router):
            (frame,) = await frames(socket, 1)
            assert (frame["event"], frame["data"]) == ("message.created", sent)
            await socket.close()

    run(scenario())


def test_the_services_believe_x_forwarded_for_from_the_router_only(
        cluster: Stack, api: Api) -> None:
    """Failed logins count per (account, client address): five from this machine, each naming
    another address in X-Forwarded-For, throttle the sixth from here, through the router too
    (which passes this machine's address on, not its own)."""
    email = unique_email()
    api.register(email=email)
    wrong = {"email": email, "password": "wrongPassword123"}
    for n in range(5):
        failed = entry(cluster, COMMAND_APIS[n % 2]).post(
            "/auth/login", wrong, X_Forwarded_For=f"10.0.0.{n}")
        assert failed.status_code == 401, failed.text
    throttled = api.post("/auth/login", wrong, X_Forwarded_For="10.0.0.99")
    assert throttled.status_code == 429, throttled.text


def test_parley_up_says_where_each_process_listens(cluster: Stack) -> None:
    said = _listeners(cluster).splitlines()
    assert [line.split() for line in said[:-2]] == [
        [name, url] for name, url in cluster.listeners.items()]
    assert [name for name, _ in [line.split() for line in said[:-2]]] == [
        "router", "command-api-1", "command-api-2", "query-api-1", "query-api-2", "gateway-1",
        "gateway-2"]
    assert said[-2] == "  projector-1, projector-2: no port (one active, the others standing by)"
    assert said[-1] == "  servers: postgres, postgres-replica, nats-1, nats-2, nats-3, s3"
