"""Attachments: an upload slot a user asked for; voice messages may use only their own."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event


class Attachment(Aggregate):
    """An object key in the attachments bucket, owned by the user who requested it."""

    class Requested(Aggregate.Created):
        attachment_id: str
        owner: int
        key: str
        filename: str
        content_type: str

    @staticmethod
    def create_id(attachment_id: str) -> UUID:
        return UUID(attachment_id)

    @event(Requested)
    def __init__(self, attachment_id: str, owner: int, key: str, filename: str,
                 content_type: str) -> None:
        self.attachment_id = attachment_id
        self.owner = owner
        self.key = key
        self.filename = filename
        self.content_type = content_type
