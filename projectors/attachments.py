"""The `attachments` read model: who uploaded what, for `GET /attachments/{id}`."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any, ClassVar

from psycopg import Cursor

from domain.attachment import Attachment


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
        curs.execute(
            "INSERT INTO attachments (id, owner_id, object_key, filename, content_type,"
            " created_at, position) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (event.attachment_id, event.owner, event.key, event.filename, event.content_type,
             event.timestamp, position))
