"""The vocabulary of the operation table: `Operation`, its `Param`s and `Response`s."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

API = "/api/v1"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_ID = 2**63 - 1  # PostgreSQL bigint
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}  # ids of users, chats and messages


@dataclass(frozen=True)
class Param:
    """A query, path or header parameter of one operation."""

    name: str
    location: Literal["query", "path", "header"] = "query"
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Response:
    """One documented response: a body type (model, `list[Model]`, raw schema) or none."""

    description: str = ""
    model: Any = None
    schema: Mapping[str, Any] | None = None
    media_type: str = "application/json"
    example: Any = None
    headers: Sequence[str] = ()  # names of entries in the document's `components.headers`


# status -> a pydantic type (body), a `Response`, a description (errors get `ErrorOut`), or None.
ResponseSpec = Any


@dataclass(frozen=True)
class Operation:
    """One public route: method, full path, bodies and the conventions that apply to it."""

    method: str
    path: str
    summary: str
    tag: str
    request: Any = None  # a pydantic model (validated as a request body)
    responses: Mapping[int, ResponseSpec] = field(default_factory=dict)
    auth: bool = True  # bearer access token
    idempotent: bool = True  # requires `Idempotency-Key` (only meaningful on writes)
    event_position: bool | None = None  # `X-Event-Position` on success; None: on writes
    query: Sequence[Param] = ()  # query, header or path parameters (path ones are derived)
    description: str = ""
    request_example: Any = None  # defaults to the request model's first `examples` entry
    operation_id: str = ""  # defaults to method + path

    @property
    def id(self) -> str:
        """`operation_id`, or one made of the method and the path: `get_chats_chat_id`."""
        if self.operation_id:
            return self.operation_id
        path = re.sub(r"[^A-Za-z0-9]+", "_", self.path.removeprefix(API)).strip("_")
        return f"{self.method.lower()}_{path}"

    @property
    def is_write(self) -> bool:
        """POST, PUT, PATCH and DELETE change state; the conventions for writes apply."""
        return self.method.upper() in WRITE_METHODS

    @property
    def needs_idempotency_key(self) -> bool:
        """Whether the `Idempotency-Key` header is required (CONTRACT.md, Idempotency)."""
        return self.is_write and self.idempotent

    @property
    def sends_event_position(self) -> bool:
        """Whether a success carries `X-Event-Position` (CONTRACT.md, Consistency)."""
        return self.is_write if self.event_position is None else self.event_position

    @property
    def waits_for_position(self) -> bool:
        """Whether the read honours `X-Min-Position` (authenticated reads of read models)."""
        return self.method.upper() == "GET" and self.auth
