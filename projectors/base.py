"""What a read model is: the tables it owns, the events it keeps, and how they change them.

One code path: `apply` takes the events of one batch, in log order, whoever runs it: the live
projector (1 to 1,000 events, each read model from its own position), the live projector again
when it isolates an event that fails (that one event alone, in a savepoint), a backfill, a
rebuild and a verify (5,000 at a time). So `apply` must leave the same tables however the log is
cut into batches; `parley projections verify` checks exactly that, comparing a fresh replay with
the live tables. Set-based writes (rows built in memory and COPied, one UPDATE per batch) are
what make replays fast; they made the live projector 4-5x faster catching up, and its batches of
one event no slower (a 1-row COPY costs ~0.1 ms more than an INSERT; `bench/rebuild.py`).

Table names are parameterized by schema: `ddl` and `apply` use *unqualified* table names, and
whoever runs them decides where those names resolve. The live projector uses the connection's
default `search_path` (the live tables); a rebuild sets `search_path` to a shadow schema, so the
same SQL builds `rebuild__<name>.<table>` while the live tables keep serving. A read model's
tables are exactly the tables its `ddl` creates (found by running it in an empty schema), which
is also why index names can never collide: indexes live in their table's schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from psycopg import Cursor

Events = Sequence[tuple[int, object]]  # (log position, domain event), in log order


@dataclass(frozen=True)
class PublicEvent:
    """An event as clients see it: NATS subject, event name and the REST-shaped payload."""

    subject: str
    event: str
    data: dict[str, Any]


class ReadModel(Protocol):
    """One read model; projectors/README.md says how to write one."""

    name: ClassVar[str]  # its tracking name, and its name for `parley projections`
    ddl: ClassVar[tuple[str, ...]]
    event_types: ClassVar[tuple[type, ...]]  # the events it keeps: no other is even decoded

    def apply(self, events: Events, curs: Cursor[Any]) -> None:
        """Apply a batch (events of `event_types` only) in the caller's transaction."""
