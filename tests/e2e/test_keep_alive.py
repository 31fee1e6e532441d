"""The API keeps an idle keep-alive connection open longer than clients keep theirs (httpx: 5 s),
so a client never reuses a connection the server is closing at that moment."""

from __future__ import annotations

import http.client
import socket
import time
from urllib.parse import urlsplit

from parley.stack import Stack

IDLE = 6.0  # past uvicorn's default keep-alive (5 s) and httpx's pool expiry (5 s)


def test_an_idle_connection_outlives_the_clients_keep_alive(stack: Stack) -> None:
    url = urlsplit(stack.base_url)
    assert url.hostname is not None and url.port is not None
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        assert first.status == 200 and first.read()
        time.sleep(IDLE)
        assert conn.sock is not None
        conn.sock.setblocking(False)
        try:
            closed = conn.sock.recv(1, socket.MSG_PEEK) == b""  # b"": the server closed it
        except BlockingIOError:
            closed = False  # nothing to read: still open
        assert not closed, f"the server closed an idle connection within {IDLE} s"
        conn.sock.setblocking(True)
        conn.request("GET", "/healthz")  # on the same connection
        assert conn.getresponse().status == 200
    finally:
        conn.close()
