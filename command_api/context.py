"""What every command endpoint needs, built once per process in the app's lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from command_api.answers import answer, response_location
from command_api.buckets import WriteBuckets
from command_api.idempotency import claim_for
from command_api.throttle import LoginThrottle, RegistrationLimit
from domain.app import Parley
from domain.errors import (
    ForbiddenError,
    IdempotencyConflictError,
    InvalidCommandError,
    NotFoundError,
)
from domain.eventstore.idempotency import Claim
from domain.eventstore.recorder import StaleReadError
from domain.outcomes import Change, Outcome
from shared.jwt.tokens import TokenService
from shared.postgres.positions import PositionWaiter
from shared.postgres.sessions import EndedSessions
from shared.s3.storage import Storage
from shared.settings import Settings
from shared.web.endpoints import (
    EXCEPTION_HANDLERS,
    RETRY_AFTER_SECONDS,
    ApiError,
    authenticate,
    handle_api_error,
    json_response,
    read_json,
    validate,
)
from shared.web.proxies import TrustedProxies

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass
class Context:
    """The process's domain application (`commands`), token service, limits and waiter."""

    settings: Settings
    commands: Parley
    tokens: TokenService
    throttle: LoginThrottle
    waiter: PositionWaiter
    sessions: EndedSessions
    fingerprint_secret: bytes

    storage: Storage | None = None
    registrations: RegistrationLimit | None = None
    writes: WriteBuckets | None = None
    proxies: TrustedProxies = field(default_factory=lambda: TrustedProxies(()))
    readmodels: AsyncConnectionPool | None = None  # for answers the read models complete

    async def run(self, command: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a synchronous eventsourcing command off the event loop; map domain errors."""
        try:
            return await run_in_threadpool(self.commands.run_command, command, *args, **kwargs)
        except IdempotencyConflictError as exc:
            status, location = exc.answer or (None, None)
            headers = {"Location": location} if location else None
            raise ApiError(409, exc.detail, headers=headers, original_status=status) from None
        except InvalidCommandError as exc:
            raise ApiError(400, str(exc)) from None
        except ForbiddenError as exc:
            raise ApiError(403, str(exc)) from None
        except NotFoundError as exc:
            raise ApiError(404, str(exc)) from None
        except StaleReadError:  # decided again and again, each time on a chat that moved
            raise ApiError(503, "The chat kept changing while this was decided; try again"
                           " with the same Idempotency-Key",
                           {"Retry-After": str(RETRY_AFTER_SECONDS)}) from None

    async def writer(self, request: Request) -> int:
        """The authenticated caller of a write, within its write rate (429 beyond it)."""
        user = (await authenticate(request, self.tokens, self.sessions)).user_id
        wait = self.writes.take(user) if self.writes is not None else 0
        if wait:  # before the key is claimed: the retry with the same key goes through later
            raise ApiError(429, "Too many writes; slow down and retry after Retry-After"
                           " seconds", headers={"Retry-After": str(wait)})
        return user

    async def caller(self, request: Request, model: type[M]) -> tuple[int, Claim, M]:
        """Authenticate, take the Idempotency-Key (scoped to the user) and parse the body."""
        user = await self.writer(request)
        raw = await read_json(request)
        claim = claim_for(request, f"user:{user}", raw, self.fingerprint_secret)
        return user, claim, validate(model, raw)

    async def delete_caller(self, request: Request) -> tuple[int, Claim]:
        """As `caller`, for DELETE requests (they carry no body)."""
        user = await self.writer(request)
        return user, claim_for(request, f"user:{user}", None, self.fingerprint_secret)

    async def respond(self, outcome: Outcome[Any], body: BaseModel | None = None,
                      wait: bool = True) -> Response:
        """Answer a command: status and Location from what it did (`command_api/answers.py`),
        `X-Event-Position`, after the read models caught up with it (bounded). `wait=False`
        for writes no read model shows to the caller (sessions)."""
        status, _ = answer(outcome.effect)
        headers = await self.settle(outcome, wait)
        if body is None:
            return Response(status_code=status, headers=headers)
        return json_response(body, status, headers)

    async def settle(self, outcome: Outcome[Any], wait: bool = True) -> dict[str, str]:
        """The headers of a command's answer, once the read models show it (bounded):
        `X-Event-Position`, `Location`, `X-Consistency`."""
        headers = {"X-Event-Position": str(outcome.position)}
        location = response_location(outcome.effect)
        if location:
            headers["Location"] = location
        wait = wait and outcome.effect.change is not Change.FOUND  # nothing written to wait for
        if wait and self.settings.consistency_timeout > 0:
            caught_up = await self.waiter.wait_for(outcome.position,
                                                   self.settings.consistency_timeout)
            headers["X-Consistency"] = "read-your-writes" if caught_up else "pending"
        return headers


def context(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


def client_address(request: Request) -> str:
    """The client's address, believing `X-Forwarded-For` only from a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    return context(request).proxies.client_host(peer,
                                                request.headers.getlist("x-forwarded-for"))


REFUSALS = (400, 403, 404)


async def handle_refusal(request: Request, exc: Exception) -> Response:
    """A write refused after its Idempotency-Key was read answers the key's 409 if the key
    already completed a request (CONTRACT.md): a DELETE retried after it succeeded is told
    `original_status: 204`, not 404. Checked only on a refusal, so success pays nothing."""
    assert isinstance(exc, ApiError)
    claim: Claim | None = getattr(request.state, "claim", None)
    if claim is not None and exc.status in REFUSALS:
        ctx = context(request)
        try:
            await ctx.run(ctx.commands.check_claim, claim)
        except ApiError as conflict:
            if conflict.status != 409:
                raise
            exc = conflict
    return await handle_api_error(request, exc)


COMMAND_EXCEPTION_HANDLERS = {**EXCEPTION_HANDLERS, ApiError: handle_refusal}
