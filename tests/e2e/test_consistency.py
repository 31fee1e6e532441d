"""Read-your-writes over real HTTP: a write waits for the read models (not at all with
`CONSISTENCY_TIMEOUT=0`), and a read sent with `X-Min-Position` waits for that position."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait

import pytest

from parley.stack import Stack
from tests.e2e.client import Api, unique_email
from tests.e2e.servers import api_process

HELD = 0.5  # how long a read waiting for its position is watched while the projector is stopped


@pytest.fixture(scope="module")
def no_wait(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """API workers that never wait for the read models (the stack's own wait 10 s)."""
    env = {**stack.env, "CONSISTENCY_TIMEOUT": "0"}
    with api_process(stack, tmp_path_factory.mktemp("no-wait"), env) as url:
        yield url


def test_a_read_with_x_min_position_waits_for_a_write_that_did_not_wait(
        api: Api, stack: Stack, no_wait: str) -> None:
    there = Api(no_wait)
    projector = stack.processes["projector"]
    projector.send_signal(signal.SIGSTOP)  # the read models stop moving
    try:
        started = time.monotonic()
        body = {"email": unique_email(), "password": "securePassword123", "display_name": "Ann"}
        registered = there.post("/auth/register", body)
        assert registered.status_code == 201, registered.text
        token = registered.json()["tokens"]["access_token"]
        created = there.post("/chats", {"title": "unseen yet", "is_group": True,
                                        "member_ids": []}, token=token)
        assert created.status_code == 201, created.text
        # answered without waiting: no X-Consistency (a wait that timed out says "pending")
        assert "X-Consistency" not in created.headers and "X-Consistency" not in registered.headers
        assert time.monotonic() - started < 5  # the stack's own writes would wait 10 s here
        chat, position = created.json(), created.headers["X-Event-Position"]
        # the read models are behind: without a position the chat is not there yet
        assert api.get(f"/chats/{chat['id']}", token=token).status_code == 404
        with ThreadPoolExecutor(1) as pool:
            read = pool.submit(api.get, f"/chats/{chat['id']}", token=token,
                               X_Min_Position=position)
            done, _ = wait([read], timeout=HELD)
            assert not done, read.result().text  # it waits for the position ...
            projector.send_signal(signal.SIGCONT)
            answer = read.result()
    finally:
        projector.send_signal(signal.SIGCONT)
    # ... and answers once the read models reached it
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == chat["id"] and answer.json()["title"] == "unseen yet"
