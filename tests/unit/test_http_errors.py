"""How the APIs' shared error handlers answer, driven through Starlette's real stack."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
import pytest
from eventsourcing import persistence as es_persistence
from psycopg_pool import PoolTimeout
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.web.endpoints import CLIENT_CLOSED_REQUEST, EXCEPTION_HANDLERS, read_json
from shared.web.service import REQUESTS, MetricsMiddleware

SCOPE = {"type": "http", "method": "POST", "path": "/", "raw_path": b"/", "query_string": b"",
         "headers": [(b"content-type", b"application/json")], "http_version": "1.1",
         "scheme": "http", "server": ("t", 80), "client": ("c", 1), "root_path": ""}


def app_of(endpoint: Any) -> MetricsMiddleware:
    return MetricsMiddleware(Starlette(routes=[Route("/", endpoint, methods=["POST"])],
                                       exception_handlers=EXCEPTION_HANDLERS), "unit")


def drive(app: Any, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST / with the given receive messages; what the app sent back."""
    incoming, sent = list(messages), []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        try:
            await app(dict(SCOPE), receive, send)
        except Exception:
            pass  # ServerErrorMiddleware re-raises after answering 500, as under uvicorn

    asyncio.run(run())
    return sent


async def echo(request: Request) -> Response:
    return JSONResponse(await read_json(request))


def counted(status: int) -> float:
    return REQUESTS.labels("unit", "POST", str(status))._value.get()


def test_a_client_that_leaves_mid_body_is_answered_499_and_counted_so() -> None:
    before_499, before_500 = counted(CLIENT_CLOSED_REQUEST), counted(500)
    sent = drive(app_of(echo), [{"type": "http.request", "body": b'{"a"', "more_body": True},
                                {"type": "http.disconnect"}])
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == CLIENT_CLOSED_REQUEST
    assert counted(CLIENT_CLOSED_REQUEST) == before_499 + 1 and counted(500) == before_500


def test_a_whole_body_is_still_read() -> None:
    sent = drive(app_of(echo), [{"type": "http.request", "body": b'{"a": 1}'}])
    assert sent[0]["status"] == 200 and sent[1]["body"] == b'{"a":1}'


def raising(exc: Exception) -> MetricsMiddleware:
    async def fail(request: Request) -> Response:
        raise exc

    return app_of(fail)


@pytest.mark.parametrize("exc", [
    psycopg.OperationalError("connection refused"),
    PoolTimeout("couldn't get a connection after 30.00 sec"),
    es_persistence.OperationalError("server closed the connection unexpectedly"),
    es_persistence.ConnectionUnavailableError("no connection"),
    es_persistence.InterfaceError("connection already closed"),
])
def test_an_unavailable_database_is_503_with_retry_after(exc: Exception) -> None:
    start, body = drive(raising(exc), [{"type": "http.request", "body": b"{}"}])[:2]
    assert start["status"] == 503
    assert (b"retry-after", b"1") in start["headers"]
    assert json.loads(body["body"]) == {"detail": "The database is unavailable; try again shortly"}


def test_other_server_errors_stay_500() -> None:
    sent = drive(raising(RuntimeError("bug")), [{"type": "http.request", "body": b"{}"}])
    assert sent[0]["status"] == 500
