"""A client that goes away mid-request is not a server error: no 500, no traceback."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from parley.stack import Stack
from tests.e2e.client import Api, User

SETTLE_SECONDS = 2.0  # the server sees the EOF at once; its log line would follow within ms


def test_a_post_whose_client_leaves_mid_body_leaves_no_traceback(stack: Stack) -> None:
    user = User(Api(stack.base_url))
    log = Path(stack.env["PARLEY_DATA_DIR"]) / "logs" / "api.log"  # tests/conftest.py's
    log_size = log.stat().st_size
    url = urlsplit(stack.base_url)
    with socket.create_connection((url.hostname, url.port)) as raw:
        raw.sendall(
            b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + user.token.encode() + b"\r\n"
            b"Idempotency-Key: " + str(uuid.uuid4()).encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"chat_id\": 1")
        time.sleep(0.2)  # the handler is waiting for the rest of the body
    time.sleep(SETTLE_SECONDS)
    with open(log, "rb") as out:
        out.seek(log_size)
        written = out.read().decode(errors="replace")
    assert "ClientDisconnect" not in written and "Exception in ASGI" not in written, written
