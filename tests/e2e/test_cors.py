"""A frontend on its own dev server (Vite :5173, Next/CRA :3000) against the system as `parley
up` runs it by default: CORS preflights and answers, the `/ws` Origin check, and storage's CORS
for the presigned URLs, as a browser would meet them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Origin

from parley.stack import Stack
from shared.cors import LOCAL_DEV_ORIGINS
from tests.e2e.client import Api, User, new_key, unique_email
from tests.e2e.servers import api_process
from tests.e2e.sockets import pong, refused, run, ws_url

VITE = "http://localhost:5173"
LOCAL_PAGES = [VITE, "http://localhost:3000", "http://127.0.0.1:5173", "http://localhost"]
FOREIGN = ["https://evil.com", "http://evil.example", "http://localhost.evil.com",
           "http://localhost:5173.evil.com", "https://localhost:5173"]
API_HEADERS = {"authorization", "content-type", "idempotency-key", "x-min-position"}
EXPOSED = {"location", "x-event-position", "x-consistency", "retry-after"}


def preflight(api: Api, path: str, origin: str, method: str = "POST",
              headers: str = "content-type,idempotency-key") -> dict[str, str]:
    response = api.http.options(path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers})
    return {"status": str(response.status_code), **{k.lower(): v for k, v in
                                                    response.headers.items()}}


def listed(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",") if item.strip()}


def test_the_stack_runs_with_parley_ups_default(stack: Stack) -> None:
    # what makes every test below a test of a plain `./dev up`
    assert stack.env["CORS_ORIGINS"] == ",".join(LOCAL_DEV_ORIGINS)


@pytest.mark.parametrize("origin", LOCAL_PAGES)
def test_a_local_page_passes_the_register_preflight(api: Api, origin: str) -> None:
    answer = preflight(api, "/auth/register", origin)
    assert answer["status"] == "200"
    assert answer["access-control-allow-origin"] == origin
    assert listed(answer["access-control-allow-methods"]) == {"get", "post", "put", "patch",
                                                              "delete"}
    assert API_HEADERS <= listed(answer["access-control-allow-headers"])


def test_preflights_allow_exactly_what_the_api_uses(api: Api) -> None:
    answer = preflight(api, "/messages", VITE, "GET", "authorization,x-min-position")
    assert answer["status"] == "200" and answer["access-control-allow-origin"] == VITE
    assert listed(answer["access-control-allow-headers"]) - API_HEADERS <= {
        "accept", "accept-language", "content-language"}  # CORS-safelisted anyway
    refused_header = preflight(api, "/auth/register", VITE, headers="content-type,x-custom")
    assert refused_header["status"] == "400"
    assert preflight(api, "/chats/1", VITE, "PUT", "content-type")["status"] == "200"
    assert preflight(api, "/chats/1", VITE, "TRACE", "content-type")["status"] == "400"


@pytest.mark.parametrize("origin", FOREIGN)
def test_a_foreign_page_gets_no_allow(api: Api, origin: str) -> None:
    answer = preflight(api, "/auth/register", origin)
    assert answer["status"] != "200"
    assert "access-control-allow-origin" not in answer
    response = api.get("/users/me", Origin=origin)
    assert response.status_code == 401
    assert "access-control-allow-origin" not in response.headers


def test_answers_to_a_local_page_expose_what_a_client_reads(api: Api) -> None:
    body = {"email": unique_email(), "password": "securePassword123", "display_name": "Vite"}
    created = api.http.post("/auth/register", json=body,
                            headers={"Origin": VITE, "Idempotency-Key": new_key()})
    assert created.status_code == 201, created.text
    assert created.headers["access-control-allow-origin"] == VITE
    assert EXPOSED <= listed(created.headers["access-control-expose-headers"])
    assert "origin" in listed(created.headers["vary"])
    user = User(api)
    chats = api.get("/chats", token=user.token, Origin=VITE)
    assert chats.status_code == 200 and chats.headers["access-control-allow-origin"] == VITE


@pytest.mark.parametrize("origin", [VITE, "http://127.0.0.1:3000"])
def test_a_local_page_opens_the_websocket(api: Api, stack: Stack, origin: str) -> None:
    user = User(api)

    async def scenario() -> None:
        async with connect(ws_url(stack, token=user.token), origin=Origin(origin)) as ws:
            assert await pong(ws, user.id) == {"event": "pong"}

    run(scenario())


@pytest.mark.parametrize("origin", FOREIGN)
def test_a_foreign_page_is_closed_4403(api: Api, stack: Stack, origin: str) -> None:
    assert run(refused(ws_url(stack, token=User(api).token), origin=Origin(origin))) == 4403


def test_storage_answers_a_local_page_for_presigned_urls(api: Api) -> None:
    ann = User(api)
    response = ann.post("/attachments", {"filename": "voice.opus", "content_type": "audio/opus"})
    assert response.status_code == 200, response.text
    upload_url = response.json()["url"]
    answer = api.http.options(upload_url, headers={
        "Origin": VITE, "Access-Control-Request-Method": "POST"})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] in (VITE, "*")
    assert "POST" in answer.headers["access-control-allow-methods"] or \
        answer.headers["access-control-allow-methods"] == "*"
    fields = response.json()["fields"]
    uploaded = api.http.post(upload_url, data=fields, files={"file": ("blob", b"OggS audio")},
                             headers={"Origin": VITE})
    assert uploaded.status_code in (200, 201, 204), uploaded.text
    assert uploaded.headers["access-control-allow-origin"] in (VITE, "*")
    download = ann.get(f"/attachments/{response.json()['attachment_id']}").json()["url"]
    fetched = api.http.get(download, headers={"Origin": VITE})
    assert fetched.status_code == 200 and fetched.content == b"OggS audio"
    assert fetched.headers["access-control-allow-origin"] in (VITE, "*")


# -- a CORS_ORIGINS of its own ----------------------------------------------------------------

APP = "https://chat.example.com"


@pytest.fixture(scope="module")
def narrowed(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """API workers (with `/ws`) allowing exactly one page, as a deployment sets it."""
    env = {**stack.env, "CORS_ORIGINS": APP}
    with api_process(stack, tmp_path_factory.mktemp("narrowed"), env) as url:
        yield Stack(base_url=url, env=env, processes={})


def test_a_set_cors_origins_allows_its_page_and_no_longer_the_local_ones(
        narrowed: Stack) -> None:
    there = Api(narrowed.base_url)
    allowed = preflight(there, "/auth/register", APP)
    assert allowed["status"] == "200" and allowed["access-control-allow-origin"] == APP
    user = User(there)
    chats = there.get("/chats", token=user.token, Origin=APP)
    assert chats.status_code == 200 and chats.headers["access-control-allow-origin"] == APP
    for origin in (VITE, "https://other.example.com", "http://chat.example.com"):
        answer = preflight(there, "/auth/register", origin)
        assert answer["status"] != "200" and "access-control-allow-origin" not in answer, origin
        response = there.get("/chats", token=user.token, Origin=origin)
        assert "access-control-allow-origin" not in response.headers, origin


def test_a_set_cors_origins_decides_which_pages_open_the_websocket(narrowed: Stack) -> None:
    user = User(Api(narrowed.base_url))

    async def scenario() -> None:
        async with connect(ws_url(narrowed, token=user.token), origin=Origin(APP)) as ws:
            assert await pong(ws, user.id) == {"event": "pong"}
        for origin in (VITE, "https://other.example.com"):
            assert await refused(ws_url(narrowed, token=user.token),
                                 origin=Origin(origin)) == 4403, origin

    run(scenario())
