"""Keep access tokens out of logs.

uvicorn logs every WebSocket handshake with its query string (`"WebSocket /ws?token=..."
[accepted]` on `uvicorn.error`) and the access log has the query string of every request;
browsers can only pass the token there. `install()` redacts it, and any JWT elsewhere in a
record, on uvicorn's loggers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping

REDACTED = "[REDACTED]"
# `token=`, `access_token=`, `refresh_token=`... up to the next parameter
_QUERY_TOKEN = re.compile(r"(?i)(token=)[^&\s\"'#]+")
# a compact JWS (every Parley token), wherever it appears: its header always starts `{"`
_JWT = re.compile(r"eyJ[\w-]*\.[\w-]+\.[\w-]*")
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def redact(text: str) -> str:
    return _JWT.sub(REDACTED, _QUERY_TOKEN.sub(rf"\g<1>{REDACTED}", text))


def _redact_value(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


class TokenRedactingFilter(logging.Filter):
    """Rewrites a record's message and string arguments before any handler formats them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {key: _redact_value(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_redact_value(arg) for arg in record.args)
        return True


def install(names: Iterable[str] = UVICORN_LOGGERS) -> None:
    """Add the filter to each logger once. Logger filters only see records logged to that very
    logger (not its children's), hence every uvicorn logger by name."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenRedactingFilter) for f in logger.filters):
            logger.addFilter(TokenRedactingFilter())
