"""The `attachments` read model: who uploaded what, for `GET /attachments/{id}`."""

from __future__ import annotations

from collections.abc import Sequence
from functools import singledispatchmethod
from typing import Any, ClassVar
from uuid import UUID

from psycopg import Cursor

from domain.attachment import Attachment
from projectors.replay import copy_rows

COLUMNS = (("id", "uuid"), ("owner_id", "int8"), ("object_key", "text"), ("filename", "text"),
           ("content_type", "text"), ("created_at", "timestamptz"), ("position", "int8"))
INSERT = (f"INSERT INTO attachments ({', '.join(name for name, _ in COLUMNS)})"
          f" VALUES ({', '.join(['%s'] * len(COLUMNS))})")


def _row(event: Attachment.Requested, position: int) -> tuple[Any, ...]:
    return (UUID(event.attachment_id), event.owner, event.key, event.filename,
            event.content_type, event.timestamp, position)


class AttachmentsProjection:
    """One row per requested upload slot."""

    name: ClassVar[str] = "attachments"
    ddl: ClassVar[tuple[str, ...]] = (
        """CREATE TABLE IF NOT EXISTS attachments (
            id uuid PRIMARY KEY,
            owner_id bigint NOT NULL,
            object_key text NOT NULL,
            filename text NOT NULL,
            content_type text NOT NULL,
            created_at timestamptz NOT NULL,
            position bigint NOT NULL
        )""",
    )

    @singledispatchmethod
    def apply(self, event: object, curs: Cursor[Any], position: int) -> None:
        """Events this projection does not keep are skipped."""

    @apply.register
    def _(self, event: Attachment.Requested, curs: Cursor[Any], position: int) -> None:
        curs.execute(INSERT, _row(event, position))

    def apply_batch(self, events: Sequence[tuple[int, object]], curs: Cursor[Any]) -> None:
        """`apply` for a replay: every event kept is an insert, so one binary COPY."""
        copy_rows(curs, "attachments", COLUMNS, [
            _row(event, position) for position, event in events
            if isinstance(event, Attachment.Requested)])
