"""What every command endpoint needs, built once per process in the app's lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from command_api.throttle import LoginThrottle
from domain.app import Parley
from domain.errors import IdempotencyConflictError
from shared.http import ApiError
from shared.positions import PositionWaiter
from shared.schemas import dump
from shared.settings import Settings
from shared.tokens import TokenService

T = TypeVar("T")


@dataclass
class Context:
    """The process's event-store application, token service, throttle and position waiter."""

    settings: Settings
    app: Parley
    tokens: TokenService
    throttle: LoginThrottle
    waiter: PositionWaiter
    fingerprint_secret: bytes

    async def run(self, command: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a synchronous eventsourcing command off the event loop; map key conflicts."""
        try:
            return await run_in_threadpool(command, *args, **kwargs)
        except IdempotencyConflictError as exc:
            headers = {"Location": exc.location} if exc.location else None
            raise ApiError(409, exc.detail, headers=headers,
                           original_status=exc.original_status) from None

    async def written(self, position: int, status: int, body: BaseModel | None = None,
                      location: str | None = None, wait: bool = True) -> Response:
        """Answer a write: `X-Event-Position`, after the read models caught up (bounded)."""
        headers = {"X-Event-Position": str(position)}
        if location:
            headers["Location"] = location
        if wait and self.settings.consistency_timeout > 0:
            caught_up = await self.waiter.wait_for(position, self.settings.consistency_timeout)
            headers["X-Consistency"] = "read-your-writes" if caught_up else "pending"
        if body is None:
            return Response(status_code=status, headers=headers)
        return JSONResponse(dump(body), status_code=status, headers=headers)


def context(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
