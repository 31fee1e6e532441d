"""The command API maps what a command raises to an HTTP answer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from command_api.context import Context
from domain.eventstore.recorder import StaleReadError
from shared.web.endpoints import ApiError


class AlwaysStale:
    def run_command(self, command: Any, *args: Any, **kwargs: Any) -> Any:
        raise StaleReadError({uuid.uuid4()})


def test_a_command_whose_chat_never_stops_changing_is_503_retry_after() -> None:
    ctx = Context(settings=None, commands=AlwaysStale(), tokens=None, throttle=None,  # type: ignore[arg-type]
                  waiter=None, sessions=None, fingerprint_secret=b"")  # type: ignore[arg-type]
    with pytest.raises(ApiError) as raised:
        asyncio.run(ctx.run(lambda: None))
    assert raised.value.status == 503
    assert raised.value.headers == {"Retry-After": "1"}
    assert "same Idempotency-Key" in raised.value.detail
