"""What a projection is: tables it owns and how one event changes them.

Table names are parameterized by schema: `ddl` and `apply` use *unqualified* table names, and
whoever runs them decides where those names resolve. The live runner uses the connection's
default `search_path` (the live tables); a rebuild sets `search_path` to a shadow schema, so the
same SQL builds `rebuild__<name>.<table>` while the live tables keep serving. A projection's
tables are exactly the tables its `ddl` creates (found by running it in an empty schema), which
is also why index names can never collide: indexes live in their table's schema.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from functools import singledispatchmethod
from typing import Any, ClassVar, Protocol, runtime_checkable

from psycopg import Cursor


@dataclass(frozen=True)
class PublicEvent:
    """An event as clients see it: NATS subject, event name and the REST-shaped payload."""

    subject: str
    event: str
    data: dict[str, Any]


class Projection(Protocol):
    """One read model. `apply` runs inside the batch transaction that also records tracking."""

    name: ClassVar[str]
    ddl: ClassVar[tuple[str, ...]]

    def apply(self, event: object, curs: Cursor[Any], position: int) -> None: ...


@runtime_checkable
class BatchProjection(Projection, Protocol):
    """A projection with a set-based path for replays (rebuild, verify).

    `apply_batch(events, curs)` must leave the tables exactly as `apply` on each event in log
    order would; `parley projections verify` compares the two paths on the real log.
    """

    def apply_batch(self, events: Sequence[tuple[int, object]], curs: Cursor[Any]) -> None: ...


def handled_types(projection: Projection) -> tuple[type, ...] | None:
    """The event classes a singledispatch `apply` registers; None if it may take any event."""
    apply = inspect.getattr_static(type(projection), "apply", None)
    if not isinstance(apply, singledispatchmethod):
        return None
    return tuple(cls for cls in apply.dispatcher.registry if cls is not object)
