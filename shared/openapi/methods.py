"""Which methods each public path supports, from the operation table, for 405 answers.

The command and query APIs each serve part of every resource (`/chats`: GET from one, POST
from the other), and a proxy or `parley.edge` sends a request to one of them by its method.
Alone, each would answer a method it does not serve with its own partial view: 404 where the
path is real (PUT /users/me) or an `Allow` that misses the other service's methods. Both
answer from this table instead: 405 with every method the public API has for the path.
"""

from __future__ import annotations

import re
from functools import cache

from shared.openapi.operations import OPERATIONS

_PARAM = re.compile(r"\{[^}/]+\}")


@cache
def _table() -> list[tuple[re.Pattern[str], tuple[str, ...]]]:
    methods: dict[str, set[str]] = {}
    for op in OPERATIONS:
        methods.setdefault(op.path, set()).add(op.method.upper())
    table = []
    for path, allowed in methods.items():
        if "GET" in allowed:
            allowed.add("HEAD")
        segments = (re.escape(part) for part in _PARAM.split(path))
        pattern = re.compile("^" + "[^/]+".join(segments) + "$")
        table.append((pattern, tuple(sorted(allowed))))
    return table


def allowed_methods(path: str) -> tuple[str, ...]:
    """The methods of the public route matching `path`; () if no route does."""
    for pattern, allowed in _table():
        if pattern.match(path):
            return allowed
    return ()
