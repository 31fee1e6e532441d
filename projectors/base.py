"""What a projection is: tables it owns and how one event changes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

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
