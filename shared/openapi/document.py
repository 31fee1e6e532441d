"""The OpenAPI 3.1 document of the public API, from the operation table and the pydantic models."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from shared.openapi.operations import OPERATIONS, TAGS
from shared.openapi.types import API, ID, Operation, Param, Response
from shared.schemas import ErrorOut

__all__ = ["OPERATIONS", "Operation", "Param", "Response", "build_openapi"]

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"
BEARER = "bearerAuth"
PATH_PARAM = re.compile(r"{(\w+)}")
SchemaKey = tuple[Any, JsonSchemaMode]

DESCRIPTION = f"""\
REST API of Parley, an event-sourced chat backend. Base path `{API}`; live events arrive over
the WebSocket `/ws` (authenticate with `?token=<access_token>`).

Conventions:
- JSON in and out. Every error body is `{{"detail": "<human readable>"}}`; validation errors
  are **400** (never 422) and may add `errors: [{{field, message}}]`.
- Timestamps are UTC ISO-8601 strings with a `Z` suffix, e.g. `2024-03-26T10:00:00Z`.
- Ids of users, chats and messages are integers; attachment ids are UUID strings.
- Authenticate with `Authorization: Bearer <access_token>` (15 min); renew it with the refresh
  token (7 days) at `/auth/refresh`, which rotates the refresh token. `/auth/logout` ends the
  login: its access tokens are refused at once (401), its sockets closed (4401).
- Every POST, PATCH and DELETE except `/auth/refresh` and `/auth/logout` needs an
  `Idempotency-Key` header; a repeated request with the same key gets 409.
- Read your writes: writes answer with `X-Event-Position` once the read models have caught up
  (bounded wait); a read may send `X-Min-Position` to wait (bounded) for a position.
- Input bounds: every string must be free of U+0000, other control characters (but tab and
  line breaks) and lone surrogates; bodies are at most 64 KiB (413) and JSON nests at most 32
  levels; ids are plain ASCII integers. Anything else is 400 with `detail`.
- A write retried with a key that already completed a request gets that key's 409, even when
  its target is gone since (a retried DELETE: 409 with `original_status: 204`, not 404).
- **429** with `Retry-After` (seconds) and `{{"detail"}}` beyond a rate limit: failed logins per
  account and client address, registrations per client address, and writes per user (a
  token bucket: a person typing fast never meets it, a flood does). Nothing was done; a
  refused write keeps its `Idempotency-Key` free for the retry.
- **503** with `Retry-After` when the database is unavailable (or, rarely, a chat kept changing
  while a post was decided): nothing was done; retry, a write with the same `Idempotency-Key`.
"""

PARAMETERS: dict[str, dict[str, Any]] = {
    "IdempotencyKey": {
        "name": "Idempotency-Key", "in": "header", "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        "example": "3f1c2a8e-9b7d-4e5f-8a6b-0c1d2e3f4a5b",
        "description": (
            "A fresh unique value (e.g. `crypto.randomUUID()`) per logical request, sent once. "
            "Missing, empty, repeated or longer than 255 characters is 400. Keys are scoped to "
            "the caller (the user, or the key alone for register/login) and kept for 24 h after "
            "success. Reusing a key while the first request runs, after it succeeded, or with a "
            "different method, path or body is 409; for a finished request the 409 body carries "
            "`original_status` and, where it created something, a `Location` header. A request "
            "rejected before it took effect (validation, 403, 404) does not consume the key."),
    },
    "MinPosition": {
        "name": "X-Min-Position", "in": "header", "required": False,
        "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}, "example": 42,
        "description": (
            "Read your writes: wait (bounded) until the read models reached this event position, "
            "the `X-Event-Position` of an earlier write; a position beyond the end of the log "
            "is no write's and is not waited for. Not a non-negative integer: 400."),
    },
}

HEADERS: dict[str, dict[str, Any]] = {
    "X-Event-Position": {
        "schema": {"type": "integer"},
        "description": (
            "Log position of the events this write caused; send it as `X-Min-Position` on a "
            "later read to see the write. Writes that waited for the read models also send "
            "`X-Consistency: read-your-writes` (or `pending` if the bounded wait timed out)."),
    },
    "Location": {"schema": {"type": "string"},
                 "description": "Path of the resource created (by this or the original request)."},
    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."},
}

SECURITY_SCHEMES = {
    BEARER: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
             "description": "The `access_token` of `/auth/login`, `/auth/register` or "
                            "`/auth/refresh`. A refresh token is refused (401)."},
}

DEFAULT_ERRORS = {
    400: "Validation error or a bad `Idempotency-Key`.",
    401: "Missing, invalid or expired access token, or one whose login was logged out.",
    409: "Duplicate request: the `Idempotency-Key` was already used.",
    413: "The body is over 64 KiB (refused before the rest is read).",
    429: "Too many writes by this user: retry after `Retry-After` seconds (nothing was done; "
         "the `Idempotency-Key` is still free).",
}
CONFLICT_DETAIL = "Idempotency-Key was already used for a completed request"


def build_openapi(operations: Sequence[Operation] = OPERATIONS,
                  version: str = "1.0.0") -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for `operations`."""
    refs, schemas = _schemas(operations)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        methods = paths.setdefault(op.path, {})
        if op.method.lower() in methods:
            raise ValueError(f"duplicate operation {op.method} {op.path}")
        methods[op.method.lower()] = _operation(op, refs, schemas)
    return copy.deepcopy({  # the constants and table examples stay unshared with callers
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Parley API", "version": version, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()
                 if any(op.tag == name for op in operations)],
        "paths": paths,
        "components": {"schemas": schemas, "parameters": PARAMETERS, "headers": HEADERS,
                       "securitySchemes": SECURITY_SCHEMES},
    })


def _responses(op: Operation) -> dict[int, Response]:
    """The operation's responses, normalised, plus the errors its conventions imply."""
    specs = dict(op.responses)
    if op.needs_idempotency_key:
        specs.setdefault(400, DEFAULT_ERRORS[400])
        specs.setdefault(409, DEFAULT_ERRORS[409])
    if op.auth:
        specs.setdefault(401, DEFAULT_ERRORS[401])
    if op.request is not None:
        specs.setdefault(413, DEFAULT_ERRORS[413])
    if op.auth and op.is_write:
        specs.setdefault(429, Response(DEFAULT_ERRORS[429], headers=("Retry-After",)))
    if op.waits_for_position:
        specs.setdefault(400, "`X-Min-Position` is not a non-negative integer.")
    success = min(specs, default=200)
    return {status: _normalise(op, status, spec, success) for status, spec in sorted(specs.items())}


def _normalise(op: Operation, status: int, spec: Any, success: int) -> Response:
    if not isinstance(spec, Response):
        description = spec if isinstance(spec, str) else ""
        model = None if spec is None or isinstance(spec, str) else spec
        spec = Response(description, model)
    if status >= 400 and spec.model is None and spec.schema is None:
        spec = Response(spec.description, ErrorOut, example=spec.example, headers=spec.headers)
    headers = list(spec.headers)
    if status < 300 and op.sends_event_position:
        headers.insert(0, "X-Event-Position")
    if status == 409 and op.needs_idempotency_key:
        headers.append("Location")
        spec = Response(spec.description, spec.model, spec.schema, spec.media_type,
                        spec.example or {"detail": CONFLICT_DETAIL, "original_status": success})
    description = spec.description or HTTPStatus(status).phrase
    return Response(description, spec.model, spec.schema, spec.media_type, spec.example,
                    tuple(dict.fromkeys(headers)))


def _schemas(operations: Iterable[Operation]) -> tuple[dict[SchemaKey, Any], dict[str, Any]]:
    """Schemas of every body type, generated together so shared models get one component."""
    keys: dict[SchemaKey, None] = {}
    for op in operations:
        if op.request is not None:
            keys[(op.request, "validation")] = None
        for response in _responses(op).values():
            if response.model is not None:
                keys[(response.model, "serialization")] = None
    refs, top = TypeAdapter.json_schemas(
        [(tp, mode, TypeAdapter(tp)) for tp, mode in keys], ref_template=REF_TEMPLATE)
    return dict(refs), dict(sorted(top.get("$defs", {}).items()))


def _operation(op: Operation, refs: dict[SchemaKey, Any],
               schemas: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tags": [op.tag], "summary": op.summary,
        "operationId": op.id,
    }
    if op.description:
        out["description"] = op.description
    if parameters := _parameters(op):
        out["parameters"] = parameters
    if op.request is not None:
        out["requestBody"] = _request_body(op, refs[(op.request, "validation")], schemas)
    out["responses"] = {str(status): _response(spec, refs)
                        for status, spec in _responses(op).items()}
    out["security"] = [{BEARER: []}] if op.auth else []
    return out


def _parameters(op: Operation) -> list[dict[str, Any]]:
    declared = {(p.location, p.name) for p in op.query}
    derived = [Param(name, "path", ID, required=True)
               for name in PATH_PARAM.findall(op.path) if ("path", name) not in declared]
    params: list[dict[str, Any]] = [_param(p) for p in (*derived, *op.query)]
    if op.needs_idempotency_key:
        params.append({"$ref": "#/components/parameters/IdempotencyKey"})
    if op.waits_for_position:
        params.append({"$ref": "#/components/parameters/MinPosition"})
    return params


def _param(param: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param.name, "in": param.location,
                           "required": param.required or param.location == "path",
                           "schema": dict(param.schema)}
    if param.description:
        out["description"] = param.description
    return out


def _request_body(op: Operation, ref: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": ref}
    example = op.request_example
    if example is None:
        target = schemas.get(ref.get("$ref", "").rsplit("/", 1)[-1], ref)
        example = next(iter(target.get("examples", [])), None)
    if example is not None:
        media["example"] = example
    return {"required": True, "content": {"application/json": media}}


def _response(spec: Response, refs: dict[SchemaKey, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": spec.description}
    if spec.headers:
        out["headers"] = {name: {"$ref": f"#/components/headers/{name}"}
                          for name in spec.headers}
    schema = refs[(spec.model, "serialization")] if spec.model is not None else spec.schema
    if schema is not None:
        media: dict[str, Any] = {"schema": dict(schema)}
        if spec.example is not None:
            media["example"] = spec.example
        out["content"] = {spec.media_type: media}
    return out
