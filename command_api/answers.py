"""What a command did, as HTTP: the one table from effects to status codes and Locations.

The answer to a request and the answer its Idempotency-Key keeps for a retry's 409 both come
from here (the key's record stores `answer(effect)`, `command_api/idempotency.py` hands it to
the domain with the claim). A response's `Location` names what the request created or found;
a retry's 409 also names what it changed, so a client that lost the answer finds the resource.
"""

from __future__ import annotations

from domain.outcomes import Change, Effect, Resource

API = "/api/v1"

_CREATED, _CHANGED, _REMOVED, _FOUND = Change.CREATED, Change.CHANGED, Change.REMOVED, Change.FOUND

# (what happened, to what) -> (status, path of the resource, "{id}" its number)
ANSWERS: dict[tuple[Change, Resource], tuple[int, str | None]] = {
    (_CREATED, Resource.USER): (201, "/users/{id}"),
    (_CREATED, Resource.SESSION): (200, None),  # a login answers tokens, not a resource
    (_CHANGED, Resource.SESSION): (200, None),  # a refresh
    (_CREATED, Resource.CHAT): (201, "/chats/{id}"),
    (_FOUND, Resource.CHAT): (200, "/chats/{id}"),  # the pair's existing direct chat
    (_CHANGED, Resource.CHAT): (200, "/chats/{id}"),
    (_REMOVED, Resource.CHAT): (204, None),
    (_CHANGED, Resource.MEMBERS): (200, None),
    (_REMOVED, Resource.MEMBER): (204, None),
    (_CREATED, Resource.MESSAGE): (201, "/messages/{id}"),
    (_CHANGED, Resource.MESSAGE): (200, "/messages/{id}"),
    (_REMOVED, Resource.MESSAGE): (204, None),
    (_CHANGED, Resource.READ_MARKER): (200, None),
    (_FOUND, Resource.READ_MARKER): (200, None),  # at or after that message already
    (_CREATED, Resource.ATTACHMENT): (200, None),  # the presigned upload, as the seed answers
    (_CREATED, Resource.REACTION): (201, None),
    (_FOUND, Resource.REACTION): (200, None),  # the caller's emoji was there already
    (_REMOVED, Resource.REACTION): (204, None),
}
LOCATED = (_CREATED, _FOUND)  # the changes whose response carries the Location itself


def answer(effect: Effect) -> tuple[int, str | None]:
    """The status and Location that tell a caller (or its retry) what the command did."""
    status, path = ANSWERS[(effect.change, effect.resource)]
    return status, f"{API}{path.format(id=effect.id)}" if path else None


def response_location(effect: Effect) -> str | None:
    """The Location header of the response itself."""
    return answer(effect)[1] if effect.change in LOCATED else None
