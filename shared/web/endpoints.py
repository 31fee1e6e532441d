"""HTTP plumbing both APIs share: JSON errors, body parsing, bearer auth."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import orjson
import psycopg
from eventsourcing import persistence as es_persistence
from psycopg_pool import AsyncConnectionPool
from psycopg_pool import ConnectionPool as SyncPool
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from shared.jwt.tokens import InvalidTokenError, TokenClaims, TokenService
from shared.openapi.methods import allowed_methods
from shared.postgres.sessions import EndedSessions

log = logging.getLogger("parley.http")
M = TypeVar("M", bound=BaseModel)
RETRY_AFTER_SECONDS = 1
MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32  # arrays and objects nested in one another (CONTRACT.md "Input bounds")
CLIENT_CLOSED_REQUEST = 499  # nginx's code: the client left before the answer (logs, metrics)


class ApiError(Exception):
    """Raised anywhere in a request to answer with `{"detail": ...}` and a status."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.extra = extra


def error_response(status: int, detail: str, headers: Mapping[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    body = {"detail": detail, **{k: v for k, v in extra.items() if v is not None}}
    return JSONResponse(body, status_code=status, headers=headers)


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.detail, exc.headers, **exc.extra)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    if exc.status_code in (404, 405):  # the router's: no route here for this method and path
        allowed = allowed_methods(request.url.path)
        if allowed:  # the public API has the path, served for other methods
            return error_response(405, "Method Not Allowed", {"Allow": ", ".join(allowed)})
    return error_response(exc.status_code, str(exc.detail), exc.headers)


async def handle_client_disconnect(request: Request, exc: Exception) -> Response:
    """The client went away while sending its body: nothing failed here and nobody reads an
    answer, so no traceback in the log and no 500 in the metrics."""
    return Response(status_code=CLIENT_CLOSED_REQUEST)


_CHECKS: dict[int, asyncio.Future[None]] = {}


def check_pool(pool: AsyncConnectionPool | SyncPool) -> None:
    """Have `pool` test its idle connections in the background: after PostgreSQL restarted,
    every pooled connection is dead, and each would fail one more request before the pool
    noticed it. A synchronous pool (the event store's) is checked in a thread."""
    running = _CHECKS.get(id(pool))
    if running is None or running.done():
        check = pool.check() if isinstance(pool, AsyncConnectionPool) \
            else asyncio.to_thread(pool.check)
        _CHECKS[id(pool)] = asyncio.ensure_future(check)


def check_pools(request: Request) -> None:
    """`check_pool` for each of the app's pools (`app.state.pools`)."""
    for pool in getattr(request.app.state, "pools", ()):
        if pool is not None:
            check_pool(pool)


async def handle_database_unavailable(request: Request, exc: Exception) -> Response:
    """PostgreSQL is down, restarting or out of connections: nothing was done, try again.
    (A write that failed this way saved nothing, so its Idempotency-Key is still free.)"""
    log.warning("%s %s: database unavailable (%s: %s)", request.method, request.url.path,
                type(exc).__name__, exc)
    check_pools(request)
    return error_response(503, "The database is unavailable; try again shortly",
                          {"Retry-After": str(RETRY_AFTER_SECONDS)})


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ApiError: handle_api_error,
    HTTPException: handle_http_exception,
    ClientDisconnect: handle_client_disconnect,
    psycopg.OperationalError: handle_database_unavailable,  # our pools (PoolTimeout too)
    es_persistence.OperationalError: handle_database_unavailable,  # the event store's
    es_persistence.InterfaceError: handle_database_unavailable,
}


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
            for err in exc.errors(include_url=False)]


def validation_error(exc: ValidationError) -> ApiError:
    errors = _field_errors(exc)
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    return ApiError(400, f"Invalid request: {first['field']}: {first['message']}", errors=errors)


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit`.

    A declared `Content-Length` over the limit is refused before anything is read; a body
    streamed without one (or longer than it claimed) is refused at the chunk that passes the
    limit, and the rest is never read (uvicorn then closes the connection).
    """
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"Request body too large (at most {limit} bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"Request body too large (at most {limit} bytes)")
    return bytes(body)


def _nesting_depth(value: Any, limit: int) -> int:
    """How deep arrays and objects nest in `value`, counted up to `limit + 1` at most."""
    depth, level = 0, [value]
    while level and depth <= limit:
        depth += 1
        level = [item for node in level if isinstance(node, (dict, list))
                 for item in (node.values() if isinstance(node, dict) else node)
                 if isinstance(item, (dict, list))]
    return depth


async def read_json(request: Request) -> Any:
    """The body as JSON: at most 64 KiB, nested at most 32 deep, valid UTF-8 without lone
    surrogates (orjson refuses those, and bounds its own recursion, unlike `json`)."""
    body = await read_body(request)
    if not body:
        raise ApiError(400, "Request body must be a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "Request body is not valid JSON (UTF-8, no lone surrogates)"
                       ) from None
    if isinstance(data, (dict, list)) and _nesting_depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ApiError(400, f"Request body is nested deeper than {MAX_JSON_DEPTH} levels")
    return data


async def parse_body(request: Request, model: type[M]) -> M:
    """Parse and validate the JSON body into `model`; 400 with field errors otherwise."""
    return validate(model, await read_json(request))


def validate(model: type[M], data: Any) -> M:
    """Validate already-parsed JSON into `model`; 400 with field errors otherwise."""
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


async def authenticate(request: Request, tokens: TokenService,
                       sessions: EndedSessions) -> TokenClaims:
    """The caller's verified access-token claims, or 401 (also once its session ended)."""
    challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    try:
        claims = tokens.verify(bearer_token(request), "access")
    except InvalidTokenError:
        raise ApiError(401, "Invalid or expired token", headers=challenge) from None
    if await sessions.ended(claims):
        raise ApiError(401, "The token's session has ended (logged out)", headers=challenge)
    return claims


MAX_ID = 2**63 - 1  # ids are PostgreSQL bigints


def int_param(value: str | None, name: str) -> int:
    """A positive integer from a path or query parameter, or 400.

    Only plain ASCII digits: `int()` alone also takes " 7", "+7", "7_000" and other scripts'
    digits (Arabic-Indic, say), and `str.isdigit()` takes superscripts ("²") that `int()`
    then refuses.
    """
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 19:
        raise ApiError(400, f"{name} must be a positive integer")
    number = int(value)
    if number < 1 or number > MAX_ID:
        raise ApiError(400, f"{name} must be a positive integer")
    return number


def json_response(content: BaseModel | Sequence[BaseModel], status: int = 200,
                  headers: Mapping[str, str] | None = None) -> Response:
    """Serialize a payload model (or a list of them) in one pass of pydantic's serializer."""
    if isinstance(content, BaseModel):
        body = content.__pydantic_serializer__.to_json(content)
    else:
        body = b"[" + b",".join(m.__pydantic_serializer__.to_json(m) for m in content) + b"]"
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def rows_as(model: type[M], rows: Sequence[Mapping[str, Any]]) -> list[M]:
    """Read-model rows to payload models without re-validating what our own tables hold."""
    return [model.model_construct(**row) for row in rows]
