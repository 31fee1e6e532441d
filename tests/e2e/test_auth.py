"""`/auth/*` over real HTTP against the running system: every status the seed and CONTRACT name."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import httpx
import psycopg
import pytest

from parley.stack import Stack
from shared.settings import Settings
from tests.e2e.client import Api, new_key, unique_email

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_register_returns_the_seed_shape(api: Api) -> None:
    email = unique_email()
    response = api.post("/auth/register", {"email": email, "password": "securePassword123",
                                           "display_name": "John Doe",
                                           "avatar_url": "https://example.com/a.jpg"})
    assert response.status_code == 201, response.text
    body = response.json()
    user, tokens = body["user"], body["tokens"]
    assert set(user) >= {"id", "email", "display_name", "avatar_url", "created_at"}
    assert isinstance(user["id"], int) and user["email"] == email
    assert user["avatar_url"] == "https://example.com/a.jpg"
    assert ISO_Z.match(user["created_at"])
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 900.0
    assert tokens["access_token"] != tokens["refresh_token"]
    assert int(response.headers["X-Event-Position"]) > 0
    assert response.headers["Location"] == f"/api/v1/users/{user['id']}"


def test_register_then_read_immediately(api: Api) -> None:
    for _ in range(10):
        body = api.register()
        me = api.get("/users/me", token=body["tokens"]["access_token"])
        assert me.status_code == 200, me.text
        assert me.json() == body["user"]


def test_duplicate_email_is_400_case_insensitively(api: Api) -> None:
    email = unique_email()
    api.register(email=email)
    again = api.post("/auth/register", {"email": email.upper(), "password": "anotherPass1",
                                        "display_name": "X"})
    assert again.status_code == 400
    assert "already registered" in again.json()["detail"]


@pytest.mark.parametrize("body", [
    {"email": "not-an-email", "password": "securePassword123", "display_name": "A"},
    {"email": "a@example.com", "password": "short", "display_name": "A"},
    {"email": "a@example.com", "password": "securePassword123", "display_name": "   "},
    {"email": "a@example.com", "password": "securePassword123", "display_name": "A",
     "avatar_url": "javascript:alert(1)"},
    {"email": "a@example.com", "password": "securePassword123"},
    {"email": "a@example.com", "password": "securePassword123", "display_name": "A",
     "is_admin": True},
    {"email": 5, "password": ["x"], "display_name": None},
])
def test_invalid_registration_is_400_with_detail(api: Api, body: dict) -> None:
    response = api.post("/auth/register", body)
    assert response.status_code == 400, response.text
    assert response.json()["detail"]
    assert response.json()["errors"]


@pytest.mark.parametrize("content", [b"", b"{not json", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_malformed_bodies_are_400(api: Api, content: bytes) -> None:
    response = api.http.post("/auth/register", content=content,
                             headers={"Idempotency-Key": new_key(),
                                      "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["detail"]


@pytest.mark.parametrize("key", [None, "", "k" * 256])
def test_bad_idempotency_key_is_400(api: Api, key: str | None) -> None:
    headers = {} if key is None else {"Idempotency-Key": key}
    response = api.http.post("/auth/register", headers=headers, json={
        "email": unique_email(), "password": "securePassword123", "display_name": "A"})
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]


def test_repeated_idempotency_header_is_400(api: Api) -> None:
    response = api.http.post("/auth/register", headers=[("Idempotency-Key", "a"),
                                                        ("Idempotency-Key", "b")],
                             json={"email": unique_email(), "password": "securePassword123",
                                   "display_name": "A"})
    assert response.status_code == 400


def test_reused_key_is_409_with_the_original_outcome(api: Api) -> None:
    key = new_key()
    body = {"email": unique_email(), "password": "securePassword123", "display_name": "A"}
    first = api.post("/auth/register", body, key=key)
    assert first.status_code == 201
    again = api.post("/auth/register", body, key=key)
    assert again.status_code == 409
    assert again.json()["original_status"] == 201
    assert again.headers["Location"] == first.headers["Location"]
    different = api.post("/auth/register", {**body, "email": unique_email()}, key=key)
    assert different.status_code == 409
    assert "different request" in different.json()["detail"]


def test_rejected_request_does_not_consume_the_key(api: Api) -> None:
    taken = unique_email()
    api.register(email=taken)
    key = new_key()
    body = {"email": taken, "password": "securePassword123", "display_name": "A"}
    assert api.post("/auth/register", body, key=key).status_code == 400
    assert api.post("/auth/register", {**body, "password": "x"}, key=key).status_code == 400
    fixed = api.post("/auth/register", {**body, "email": unique_email()}, key=key)
    assert fixed.status_code == 201


def test_concurrent_requests_with_one_key_have_one_effect(api: Api, stack: Stack) -> None:
    email, key, n = unique_email("race"), new_key(), 24
    body = {"email": email, "password": "securePassword123", "display_name": "Racer"}

    async def race() -> list[int]:
        async with httpx.AsyncClient(base_url=f"{stack.base_url}/api/v1", timeout=60) as client:
            responses = await asyncio.gather(*(
                client.post("/auth/register", json=body, headers={"Idempotency-Key": key})
                for _ in range(n)))
        return [r.status_code for r in responses]

    statuses = asyncio.run(race())
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == n - 1, statuses
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        count = conn.execute("SELECT count(*) FROM users WHERE lower(email) = lower(%s)",
                             (email,)).fetchone()
    assert count == (1,)


def test_concurrent_registrations_of_one_email_create_one_user(api: Api, stack: Stack) -> None:
    email, n = unique_email("race2"), 12
    body = {"email": email, "password": "securePassword123", "display_name": "Racer"}

    async def race() -> list[int]:
        async with httpx.AsyncClient(base_url=f"{stack.base_url}/api/v1", timeout=60) as client:
            responses = await asyncio.gather(*(
                client.post("/auth/register", json=body, headers={"Idempotency-Key": new_key()})
                for _ in range(n)))
        return [r.status_code for r in responses]

    statuses = asyncio.run(race())
    assert sorted(statuses) == [201] + [400] * (n - 1), statuses


def test_login_returns_a_token_pair(api: Api) -> None:
    email = unique_email()
    api.register(email=email)
    response = api.post("/auth/login", {"email": email.lower(), "password": "securePassword123"})
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 900.0
    assert api.get("/users/me", token=tokens["access_token"]).json()["email"] == email


def test_login_failures_are_indistinguishable(api: Api) -> None:
    email = unique_email()
    api.register(email=email)
    wrong = api.post("/auth/login", {"email": email, "password": "wrongPassword1"},
                     X_Forwarded_For="10.1.0.1")
    unknown = api.post("/auth/login", {"email": unique_email(), "password": "wrongPassword1"},
                       X_Forwarded_For="10.1.0.1")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_login_requires_idempotency_key_and_valid_body(api: Api) -> None:
    assert api.post("/auth/login", {"email": "a@b.c", "password": "x"}, key=None).status_code \
        == 400
    assert api.post("/auth/login", {"email": "a@b.c"}).status_code == 400


def test_repeated_failures_are_throttled_per_account_and_address(api: Api) -> None:
    email = unique_email()
    api.register(email=email)
    bad = {"email": email, "password": "wrongPassword1"}
    for _ in range(5):
        assert api.post("/auth/login", bad, X_Forwarded_For="10.2.0.1").status_code == 401
    throttled = api.post("/auth/login", {"email": email, "password": "securePassword123"},
                         X_Forwarded_For="10.2.0.1")
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) > 0
    # the owner, elsewhere, is not locked out by someone guessing from 10.2.0.1
    elsewhere = api.post("/auth/login", {"email": email, "password": "securePassword123"},
                         X_Forwarded_For="10.2.0.2")
    assert elsewhere.status_code == 200


def test_failures_from_one_address_are_throttled_across_accounts(api: Api) -> None:
    """30 failures per client address (the default), whichever accounts they name: the 31st
    login from there is refused even for an account that never failed; elsewhere it works."""
    address = f"10.3.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    email = unique_email()
    api.register(email=email)
    for _ in range(Settings().login_max_failures_per_address):
        wrong = {"email": unique_email("guess"), "password": "wrongPassword1"}
        assert api.post("/auth/login", wrong, X_Forwarded_For=address).status_code == 401
    good = {"email": email, "password": "securePassword123"}
    throttled = api.post("/auth/login", good, X_Forwarded_For=address)
    assert throttled.status_code == 429, throttled.text
    assert int(throttled.headers["Retry-After"]) > 0
    assert api.post("/auth/login", good, X_Forwarded_For="10.3.250.1").status_code == 200


def test_refresh_rotates_and_reuse_revokes_the_family(api: Api) -> None:
    tokens = api.register()["tokens"]
    first = api.post("/auth/refresh", {"refresh_token": tokens["refresh_token"]}, key=None)
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert api.get("/users/me", token=rotated["access_token"]).status_code == 200
    reuse = api.post("/auth/refresh", {"refresh_token": tokens["refresh_token"]}, key=None)
    assert reuse.status_code == 401
    newest = api.post("/auth/refresh", {"refresh_token": rotated["refresh_token"]}, key=None)
    assert newest.status_code == 401, "reuse must revoke every token of the family"


def test_token_kinds_are_not_interchangeable(api: Api) -> None:
    tokens = api.register()["tokens"]
    assert api.get("/users/me", token=tokens["refresh_token"]).status_code == 401
    as_refresh = api.post("/auth/refresh", {"refresh_token": tokens["access_token"]}, key=None)
    assert as_refresh.status_code == 401


@pytest.mark.parametrize("body", [{}, {"refresh_token": ""}, {"refresh_token": 5}])
def test_refresh_with_bad_body_is_400(api: Api, body: dict) -> None:
    assert api.post("/auth/refresh", body, key=None).status_code == 400


def test_refresh_with_garbage_token_is_401(api: Api) -> None:
    response = api.post("/auth/refresh", {"refresh_token": "a.b.c"}, key=None)
    assert response.status_code == 401
    assert response.json()["detail"]


def test_logout_revokes_the_refresh_token(api: Api) -> None:
    tokens = api.register()["tokens"]
    assert api.post("/auth/logout", {"refresh_token": tokens["refresh_token"]},
                    key=None).status_code == 204
    again = api.post("/auth/refresh", {"refresh_token": tokens["refresh_token"]}, key=None)
    assert again.status_code == 401


def test_logout_ends_the_sessions_access_tokens_but_not_other_logins(api: Api) -> None:
    registered = api.register()
    email, first = registered["user"]["email"], registered["tokens"]
    second = api.post("/auth/login", {"email": email, "password": "securePassword123"}).json()
    assert api.post("/auth/logout", {"refresh_token": first["refresh_token"]},
                    key=None).status_code == 204
    for response in (api.get("/users/me", token=first["access_token"]),
                     api.post("/chats", {"title": "t", "is_group": True, "member_ids": []},
                              token=first["access_token"])):
        assert response.status_code == 401, response.text
        assert response.json()["detail"] == "The token's session has ended (logged out)"
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert api.get("/users/me", token=second["access_token"]).status_code == 200
    # the access token of a refreshed pair belongs to the same session: it ends too
    renewed = api.post("/auth/refresh", {"refresh_token": second["refresh_token"]},
                       key=None).json()
    assert api.post("/auth/logout", {"refresh_token": renewed["refresh_token"]},
                    key=None).status_code == 204
    for token in (second["access_token"], renewed["access_token"]):
        assert api.get("/users/me", token=token).status_code == 401


def test_refresh_token_reuse_ends_the_sessions_access_tokens(api: Api) -> None:
    tokens = api.register()["tokens"]
    rotated = api.post("/auth/refresh", {"refresh_token": tokens["refresh_token"]},
                       key=None).json()
    assert api.post("/auth/refresh", {"refresh_token": tokens["refresh_token"]},
                    key=None).status_code == 401  # a replay: the family is revoked
    # revocation on reuse answers at once, without waiting for the read models: poll briefly
    deadline = time.monotonic() + 10
    while api.get("/users/me", token=rotated["access_token"]).status_code == 200:
        assert time.monotonic() < deadline, "the stolen family's access token still works"
        time.sleep(0.05)
    assert api.get("/users/me", token=rotated["access_token"]).status_code == 401
