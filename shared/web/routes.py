"""Routes from the operation table: paths and methods are written once, in `shared.openapi`.

Each service names the operations it serves by id (`post_chats`) with their handlers; the path
and method come from the table that also builds `/openapi.json` and the 405 answers, so a route
cannot drift from its documentation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.routing import Route

from shared.openapi.operations import OPERATIONS


def api_routes(handlers: Mapping[str, Any]) -> list[Route]:
    """A `Route` per operation id in `handlers`; an id the table does not have is an error."""
    operations = {op.id: op for op in OPERATIONS}
    unknown = sorted(set(handlers) - set(operations))
    if unknown:
        raise ValueError(f"no such operation in shared.openapi: {unknown}")
    return [Route(operations[op_id].path, handler, methods=[operations[op_id].method])
            for op_id, handler in handlers.items()]
