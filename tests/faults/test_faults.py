"""The fault suite: while posts keep coming and a WebSocket reader follows them, one process
or server is killed (or frozen); afterwards every acknowledged post is stored exactly once,
was delivered exactly once and in order, no answer was a 500, and the system recovered
(the clients and the checks: tests/faults/load.py). Each fault's recovery times are printed
(`-s` shows them) and recorded in the README.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway.protocol import CLOSE_TRY_AGAIN
from parley.embedded.processes import spawn_child
from parley.stack import Stack
from shared.settings import parse_database_url
from tests.databases import database_url_for
from tests.e2e.client import Api, User
from tests.faults.load import (
    RECOVERY_DEADLINE,
    all_messages,
    patiently,
    process,
    survive,
    wait_ready,
)


def kill_a_postgres_backend(stack: Stack) -> None:
    """Crash recovery: PostgreSQL resets every connection, as after an OOM kill."""
    with psycopg.connect(stack.env["DATABASE_URL"], autocommit=True) as conn:
        pid = conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type ="
                           " 'client backend' AND pid <> pg_backend_pid() LIMIT 1").fetchone()
    assert pid is not None
    subprocess.run(["kill", "-9", str(pid[0])], check=True)


def kill_the_postmaster(stack: Stack) -> None:
    process(stack, "postgres").kill()


def kill_the_projector(stack: Stack) -> None:
    stack.processes["projector"].send_signal(signal.SIGKILL)


def kill_an_api_worker(stack: Stack) -> None:
    workers = process(stack, "api").children()
    assert workers, "no uvicorn worker to kill"
    workers[0].kill()


def kill_nats(stack: Stack) -> None:
    process(stack, "nats").kill()


def freeze_nats_for_30s(stack: Stack) -> None:
    server = process(stack, "nats")
    server.suspend()
    try:
        time.sleep(30)
    finally:
        server.resume()


FAULTS: dict[str, Callable[[Stack], None]] = {
    "kill -9 a PostgreSQL backend": kill_a_postgres_backend,
    "kill -9 the PostgreSQL postmaster": kill_the_postmaster,
    "kill -9 the projector": kill_the_projector,
    "kill -9 an API worker": kill_an_api_worker,
    "kill -9 the NATS server": kill_nats,
    "SIGSTOP NATS for 30 s": freeze_nats_for_30s,
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_fault_loses_nothing(faulty: Stack, name: str) -> None:
    survive(faulty, name, FAULTS[name])


def test_kill_9_of_the_active_projector_with_a_standby_running(
        faulty: Stack, tmp_path: Path) -> None:
    log = tmp_path / "standby.log"
    standby = spawn_child([sys.executable, "-m", "projectors"], log, env=faulty.env)
    deadline = time.monotonic() + 60
    while "standing by" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the standby never started"
        time.sleep(0.1)
    try:
        survive(faulty, "kill -9 the active projector, a standby running", kill_the_projector)
        assert "this projector is active" in log.read_text()
    finally:
        standby.terminate()
        standby.wait(30)


def test_every_connection_cut_costs_each_pool_one_failed_request_at_most(faulty: Stack) -> None:
    """After PostgreSQL dropped every connection (a restart, a failover, an operator's
    pg_terminate_backend), a pool whose first request failed tests its idle connections, so
    the next requests do not fail one by one on the other dead ones."""
    wait_ready(faulty, time.monotonic())
    api = Api(faulty.base_url)
    ann = patiently(User, api, "Ann")
    chat = patiently(ann.group, title="cut")["id"]

    def post(i: int) -> int:
        return ann.post("/messages", {"chat_id": chat, "type": "text", "content": f"{i}"}
                        ).status_code

    def read(i: int) -> int:
        return ann.get("/messages", chat_id=chat).status_code

    with ThreadPoolExecutor(16) as pool:  # every pool of both workers holds idle connections
        assert set(pool.map(post, range(64))) | set(pool.map(read, range(64))) == {200, 201}
    with psycopg.connect(faulty.env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type"
                     " = 'client backend' AND pid <> pg_backend_pid()")
    answers = [(post(i), read(i)) for i in range(60)]
    failed_posts = sum(p == 503 for p, _ in answers)
    failed_reads = sum(r == 503 for _, r in answers)
    assert {p for p, _ in answers} <= {201, 503} and {r for _, r in answers} <= {200, 503}
    # two workers, each with an event-store pool and a pool of its own per API
    assert failed_posts <= 4 and failed_reads <= 2, answers


async def close_of(stack: Stack, user: User) -> tuple[int, str]:
    """The code and reason the user's socket is closed with; only the user's own frames may
    come before."""
    url = f"ws{stack.base_url.removeprefix('http')}/ws?token={user.token}"
    async with connect(url, open_timeout=30) as ws:
        try:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                assert frame["event"] == "user.registered" and frame["data"]["id"] == user.id
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, closed
            return closed.rcvd.code, closed.rcvd.reason


def test_a_database_refusing_connections_is_503_and_the_retried_write_has_one_effect(
        faulty: Stack) -> None:
    """PostgreSQL down or out of connections, made exact: the database stops accepting
    connections and the API's are cut. A write answers 503 with `Retry-After: 1` and a detail,
    `/readyz` 503; once it is back, the same Idempotency-Key is tried again and there is
    exactly one message. A socket opened meanwhile is closed 1013 (come back), not 1011."""
    wait_ready(faulty, time.monotonic())
    api = Api(faulty.base_url)
    ann = patiently(User, api, "Ann")
    chat = patiently(ann.group, title="refusing")["id"]
    url = faulty.env["DATABASE_URL"]
    database = parse_database_url(url).dbname
    body = {"chat_id": chat, "type": "text", "content": f"once {uuid.uuid4()}"}
    key = str(uuid.uuid4())
    with psycopg.connect(database_url_for(url, "postgres"), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        try:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = %s AND pid <> pg_backend_pid()", (database,))
            refused = ann.post("/messages", body, key=key)
            readyz = httpx.get(f"{faulty.base_url}/readyz", timeout=30)
            ws_closed = asyncio.run(asyncio.wait_for(close_of(faulty, ann), 60))
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "1" and refused.json()["detail"]
    assert readyz.status_code == 503, readyz.text
    assert ws_closed == (CLOSE_TRY_AGAIN, "server busy, resume with cursor")  # not 1011
    deadline = time.monotonic() + RECOVERY_DEADLINE
    while (retried := ann.post("/messages", body, key=key)).status_code == 503:
        assert time.monotonic() < deadline, retried.text
        time.sleep(0.2)
    assert retried.status_code == 201, retried.text
    again = ann.post("/messages", body, key=key)
    assert again.status_code == 409 and again.json()["original_status"] == 201, again.text
    stored = [m for m in all_messages(api, ann, chat) if m["content"] == body["content"]]
    assert [m["id"] for m in stored] == [retried.json()["id"]]
    wait_ready(faulty, time.monotonic())
