"""`GET /messages/{id}/history`: every version of a message, read from the event log.

The one read of the query API that is not served from a read model: the log keeps every
version (the message's `Posted` and `Edited` events), so a history table would only copy it.
Who may see the message is still decided on the read models, as for `GET /messages/{id}`;
then the message's own events are one primary-key range of `parley_events`
(originator_id, originator_version), decoded and upcast as the domain reads them.
"""

from __future__ import annotations

from eventsourcing.persistence import StoredEvent
from starlette.requests import Request
from starlette.responses import Response

from domain.errors import NotFoundError
from domain.eventstore.transcoder import event_mapper
from domain.message import Message, versions
from query_api.context import reader
from shared.postgres.positions import EVENTS_TABLE
from shared.schemas import MessageVersion
from shared.web.endpoints import ApiError, int_param, json_response

MAPPER = event_mapper()


async def message_history(request: Request) -> Response:
    ctx, claims = await reader(request)
    number = int_param(request.path_params["message_id"], "message_id")
    originator = Message.create_id(number)
    async with ctx.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT 1 FROM messages msg WHERE id = %s AND EXISTS (SELECT 1 FROM chat_members m"
            " WHERE m.chat_id = msg.chat_id AND m.user_id = %s)", (number, claims.user_id))
        if await cur.fetchone() is None:
            raise ApiError(404, "Message not found")
        cur = await conn.execute(
            f"SELECT originator_version, topic, state FROM {EVENTS_TABLE}"
            " WHERE originator_id = %s ORDER BY originator_version", (originator,))
        stored = await cur.fetchall()
    events = (MAPPER.to_domain_event(StoredEvent(originator, version, topic, bytes(state)))
              for version, topic, state in stored)
    try:
        found = versions(events)  # deleted since the read model showed it: 404 all the same
    except NotFoundError:
        raise ApiError(404, "Message not found") from None
    return json_response([MessageVersion(content=content, at=at) for content, at in found])
