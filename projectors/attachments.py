"""The `attachments` read model: who uploaded what, for `GET /attachments/{id}`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from psycopg import Cursor

from domain.attachment import Attachment
from projectors.base import Events
from projectors.rows import Table


@dataclass(slots=True)
class AttachmentRow:
    """A row of `attachments`."""

    id: UUID
    owner_id: int
    object_key: str
    filename: str
    content_type: str
    created_at: datetime
    position: int


ATTACHMENTS = Table("attachments", AttachmentRow)


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
    event_types: ClassVar[tuple[type, ...]] = (Attachment.Requested,)

    def apply(self, events: Events, curs: Cursor[Any]) -> None:
        """Every event kept is an insert: one binary COPY."""
        ATTACHMENTS.copy(curs, [
            AttachmentRow(id=UUID(event.attachment_id), owner_id=event.owner,
                          object_key=event.key, filename=event.filename,
                          content_type=event.content_type, created_at=event.timestamp,
                          position=position)
            for position, event in events if isinstance(event, Attachment.Requested)])
