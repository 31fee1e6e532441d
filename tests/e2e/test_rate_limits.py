"""Rate limits over real HTTP: the login throttle under concurrency, registrations per address,
writes per user, and whose `X-Forwarded-For` is believed.

The shared stack trusts the tests as its proxy and has generous limits (tests/conftest.py).
Small limits and the default configuration run in API processes of their own, started here
on the shared stack's servers (same database, projector and signing key).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from parley.stack import Stack
from tests.e2e.client import Api, User, new_key, unique_email
from tests.e2e.servers import api_process

LIMITS = ("TRUSTED_PROXIES", "REGISTER_MAX_PER_ADDRESS", "WRITE_RATE_PER_USER",
          "WRITE_BURST_PER_USER")
SMALL = {"TRUSTED_PROXIES": "127.0.0.1", "REGISTER_MAX_PER_ADDRESS": "3",
         "LOGIN_MAX_FAILURES_PER_ADDRESS": "3", "WRITE_RATE_PER_USER": "0.5",
         "WRITE_BURST_PER_USER": "4"}
PASSWORD = "securePassword123"


@pytest.fixture(scope="module")
def limited(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with api_process(stack, tmp_path_factory.mktemp("limited"), {**stack.env, **SMALL}) as url:
        yield url


@pytest.fixture(scope="module")
def defaults(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {k: v for k, v in stack.env.items() if k not in LIMITS}
    with api_process(stack, tmp_path_factory.mktemp("defaults"), env) as url:
        yield url


def new_address() -> str:
    """A client address no other test (or earlier run on the same data) has used."""
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


def gather(base_url: str, requests: list[tuple[str, dict, dict]]) -> list[httpx.Response]:
    """Send every (path, body, headers) at once, each on a connection of its own."""
    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(requests))
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=60,
                                     limits=limits) as client:
            return list(await asyncio.gather(*(
                client.post(path, json=body, headers={"Idempotency-Key": new_key(), **headers})
                for path, body, headers in requests)))
    return asyncio.run(run())


def assert_429(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["detail"]


def test_concurrent_wrong_passwords_get_at_most_the_limit_of_401s(api: Api, stack: Stack) -> None:
    email, address, n = unique_email("guess"), new_address(), 24
    api.register(email=email)
    bad = {"email": email, "password": "wrongPassword1"}
    responses = gather(stack.base_url, [("/auth/login", bad, {"X-Forwarded-For": address})] * n)
    statuses = [r.status_code for r in responses]
    assert statuses.count(401) == 5, statuses  # LOGIN_MAX_FAILURES_PER_ACCOUNT
    assert statuses.count(429) == n - 5, statuses
    for response in responses:
        if response.status_code == 429:
            assert_429(response)
    # the right password from there waits too; the owner elsewhere does not
    good = {"email": email, "password": PASSWORD}
    assert_429(api.post("/auth/login", good, X_Forwarded_For=address))
    assert api.post("/auth/login", good, X_Forwarded_For=new_address()).status_code == 200


def test_successful_logins_do_not_count_against_the_address(api: Api, limited: str) -> None:
    email, address = unique_email(), new_address()
    api.register(email=email)
    there = Api(limited)
    for _ in range(5):  # LOGIN_MAX_FAILURES_PER_ADDRESS is 3 here
        ok = there.post("/auth/login", {"email": email, "password": PASSWORD},
                        X_Forwarded_For=address)
        assert ok.status_code == 200, ok.text
    for _ in range(3):  # other accounts' failures do count, across accounts
        wrong = {"email": unique_email(), "password": "wrongPassword1"}
        assert there.post("/auth/login", wrong, X_Forwarded_For=address).status_code == 401
    assert_429(there.post("/auth/login", {"email": email, "password": PASSWORD},
                          X_Forwarded_For=address))


def test_by_default_x_forwarded_for_from_loopback_is_not_believed(api: Api,
                                                                  defaults: str) -> None:
    email = unique_email()
    api.register(email=email)
    there = Api(defaults)
    bad = {"email": email, "password": "wrongPassword1"}
    # each guess names another address; all come from 127.0.0.1 and share its throttle
    statuses = [there.post("/auth/login", bad, X_Forwarded_For=f"10.250.0.{i}").status_code
                for i in range(6)]
    assert 401 in statuses and statuses[-1] == 429, statuses
    first_429 = statuses.index(429)
    assert set(statuses[:first_429]) == {401} and set(statuses[first_429:]) == {429}, statuses


def test_registrations_per_address_hold_across_workers(limited: str) -> None:
    address, n = new_address(), 8
    requests = [("/auth/register",
                 {"email": unique_email(), "password": PASSWORD, "display_name": "Bot"},
                 {"X-Forwarded-For": address}) for _ in range(n)]
    responses = gather(limited, requests)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 3 + [429] * (n - 3), statuses  # REGISTER_MAX_PER_ADDRESS
    for response in responses:
        if response.status_code == 429:
            assert_429(response)
            assert "registrations" in response.json()["detail"]
    # another address is not held back
    other = Api(limited).post("/auth/register", {"email": unique_email(), "password": PASSWORD,
                                                 "display_name": "Ann"},
                              X_Forwarded_For=new_address())
    assert other.status_code == 201, other.text


def test_a_users_write_flood_is_slowed_and_others_are_not(api: Api, limited: str) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    there = Api(limited)  # one keep-alive connection: one worker, one bucket (burst 4, 0.5/s)

    def post(user: User, text: str, key: str = "new") -> httpx.Response:
        return there.post("/messages", {"chat_id": chat, "type": "text", "content": text},
                          token=user.token, key=key)

    refused, key, sent = None, new_key(), 0
    for i in range(30):  # each post refills 1/2 token per second: the bucket empties anyway
        response = post(ann, f"flood {i}", key=key)
        if response.status_code == 429:
            refused = response
            break
        assert response.status_code == 201, response.text
        key, sent = new_key(), sent + 1
    assert refused is not None and sent >= 4, sent
    assert_429(refused)
    assert int(refused.headers["Retry-After"]) <= 2  # a token every 2 s
    assert post(bob, "unaffected").status_code == 201
    time.sleep(int(refused.headers["Retry-After"]))
    # the refused write did not use its key: the retry with it goes through
    again = post(ann, f"flood {sent}", key=key)
    assert again.status_code == 201, again.text
