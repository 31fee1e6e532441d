"""How the APIs' shared error handlers answer, driven through Starlette's real stack."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.http import CLIENT_CLOSED_REQUEST, EXCEPTION_HANDLERS, read_json
from shared.service import REQUESTS, MetricsMiddleware


async def echo(request: Request) -> Response:
    return JSONResponse(await read_json(request))


def call(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Starlette]:
    """POST / with the given receive messages; what the app sent back."""
    app = Starlette(routes=[Route("/", echo, methods=["POST"])],
                    exception_handlers=EXCEPTION_HANDLERS)
    wrapped = MetricsMiddleware(app, "unit")
    incoming, sent = list(messages), []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "raw_path": b"/",
             "query_string": b"", "headers": [(b"content-type", b"application/json")],
             "http_version": "1.1", "scheme": "http", "server": ("t", 80), "client": ("c", 1),
             "root_path": ""}
    asyncio.run(wrapped(scope, receive, send))
    return sent, app


def counted(status: int) -> float:
    return REQUESTS.labels("unit", "POST", str(status))._value.get()


def test_a_client_that_leaves_mid_body_is_answered_499_and_counted_so() -> None:
    before_499, before_500 = counted(CLIENT_CLOSED_REQUEST), counted(500)
    sent, _ = call([{"type": "http.request", "body": b'{"a"', "more_body": True},
                    {"type": "http.disconnect"}])
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == CLIENT_CLOSED_REQUEST
    assert counted(CLIENT_CLOSED_REQUEST) == before_499 + 1 and counted(500) == before_500


def test_a_whole_body_is_still_read() -> None:
    sent, _ = call([{"type": "http.request", "body": b'{"a": 1}', "more_body": False}])
    assert sent[0]["status"] == 200 and sent[1]["body"] == b'{"a":1}'
