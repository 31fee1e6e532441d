"""`/users/*` and the service endpoints over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from parley.stack import Stack
from tests.e2e.client import Api


def test_me_requires_a_valid_access_token(api: Api) -> None:
    assert api.get("/users/me").status_code == 401
    assert api.get("/users/me", token="nonsense").status_code == 401
    response = api.http.get("/users/me", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401
    assert response.json()["detail"]


def test_public_profile_has_no_email(api: Api) -> None:
    alice = api.register(display_name="Alice", avatar_url="https://example.com/a.png")
    bob = api.register(display_name="Bob")
    profile = api.get(f"/users/{alice['user']['id']}", token=bob["tokens"]["access_token"])
    assert profile.status_code == 200
    assert profile.json() == {"id": alice["user"]["id"], "display_name": "Alice",
                              "avatar_url": "https://example.com/a.png",
                              "online": False, "last_seen_at": None}  # never connected


@pytest.mark.parametrize("user_id,status", [("999999999", 404), ("abc", 400), ("0", 400),
                                            ("-1", 400), ("99999999999999999999", 400)])
def test_profile_lookup_errors(api: Api, user_id: str, status: int) -> None:
    token = api.register()["tokens"]["access_token"]
    response = api.get(f"/users/{user_id}", token=token)
    assert response.status_code == status
    assert response.json()["detail"]


def test_min_position_must_be_a_non_negative_integer(api: Api) -> None:
    """(That a read waits for it: tests/e2e/test_consistency.py.)"""
    response = api.post("/auth/register", {"email": "pos-" + api.register()["user"]["email"],
                                           "password": "securePassword123",
                                           "display_name": "P"})
    assert response.status_code == 201
    position = response.headers["X-Event-Position"]
    token = response.json()["tokens"]["access_token"]
    assert api.get("/users/me", token=token, X_Min_Position=position).status_code == 200
    for bad in ("x", "-1", ""):
        response = api.get("/users/me", token=token, X_Min_Position=bad)
        assert response.status_code == 400, bad
        assert response.json()["detail"] == "X-Min-Position must be a non-negative integer"


def test_unknown_routes_and_methods_answer_json(api: Api) -> None:
    missing = api.get("/nope")
    assert missing.status_code == 404 and missing.json()["detail"]
    wrong_method = api.http.patch("/auth/register", headers={"Idempotency-Key": "k"})
    assert wrong_method.status_code == 405 and wrong_method.json()["detail"]


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/users/me", "GET, HEAD"),  # a read-only resource reached by a write method
    ("POST", "/users/7", "GET, HEAD"),
    ("GET", "/auth/login", "POST"),  # a write-only resource reached by a read method
    ("TRACE", "/auth/register", "POST"),
    ("OPTIONS", "/chats", "GET, HEAD, POST"),  # served by both APIs: all methods listed
    ("PUT", "/chats/5", "DELETE, GET, HEAD, PATCH"),
    ("GET", "/chats/5/members/3", "DELETE"),
])
def test_a_method_the_path_does_not_have_is_405_with_every_allowed_one(
        api: Api, method: str, path: str, allow: str) -> None:
    response = api.http.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["Allow"] == allow
    assert response.json() == {"detail": "Method Not Allowed"}


def test_health_and_readiness(stack: Stack) -> None:
    assert httpx.get(f"{stack.base_url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{stack.base_url}/readyz").status_code == 200
    assert "parley_http_requests_total" in httpx.get(f"{stack.base_url}/metrics").text
