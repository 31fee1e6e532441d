"""`/auth/*`: register, login, refresh (rotation with reuse detection), logout."""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from command_api import passwords
from command_api.context import Context, client_address, context
from command_api.idempotency import claim_for
from domain.errors import (
    ConcurrentRefreshError,
    EmailAlreadyRegisteredError,
    InvalidCredentialsError,
    RefreshTokenReusedError,
    SessionRevokedError,
)
from domain.session import session_id_from
from shared.jwt.tokens import InvalidTokenError, TokenClaims
from shared.schemas import (
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    RegisterResponse,
    TokenPair,
    UserOut,
)
from shared.web.endpoints import RETRY_AFTER_SECONDS, ApiError, parse_body, read_json, validate

ANONYMOUS = "anonymous"  # register/login keys are scoped by the key alone (CONTRACT.md)


def _token_pair(ctx: Context, user_id: int, session_id: str, refresh_id: str) -> TokenPair:
    access, _ = ctx.tokens.issue("access", user_id, session_id=session_id)
    refresh, _ = ctx.tokens.issue("refresh", user_id, session_id=session_id, token_id=refresh_id)
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=ctx.tokens.access_ttl)


async def register(request: Request) -> Response:
    ctx = context(request)
    raw = await read_json(request)
    claim = claim_for(request, ANONYMOUS, raw, ctx.fingerprint_secret)
    body = validate(RegisterRequest, raw)
    await ctx.run(ctx.commands.check_claim, claim)
    if ctx.registrations is not None:  # counted before the 19 MiB hash, whatever follows
        attempt = await ctx.registrations.attempt(client_address(request))
        if attempt.wait:
            raise ApiError(429, "Too many registrations from this address; try again later",
                           headers={"Retry-After": str(attempt.wait)})
    password_hash = await run_in_threadpool(passwords.hash_password, body.password)
    try:
        outcome = await ctx.run(ctx.commands.register_user, claim, body.email, password_hash,
                                body.display_name, body.avatar_url, _new_token_id())
    except EmailAlreadyRegisteredError as exc:
        raise ApiError(400, str(exc)) from None
    user, session = outcome.value
    tokens = _token_pair(ctx, user.number, str(session.id), session.token_id)
    out = RegisterResponse(
        user=UserOut(id=user.number, email=user.email, display_name=user.display_name,
                     avatar_url=user.avatar_url, created_at=user.registered_at),
        tokens=tokens)
    return await ctx.respond(outcome, out)


async def login(request: Request) -> Response:
    ctx = context(request)
    raw = await read_json(request)
    claim = claim_for(request, ANONYMOUS, raw, ctx.fingerprint_secret)
    body = validate(LoginRequest, raw)
    address = client_address(request)
    await ctx.run(ctx.commands.check_claim, claim)
    # counted as a failure before the verify, in one step with the check: concurrent guesses
    # queue for the count instead of all passing it; a success takes its count back
    attempt = await ctx.throttle.attempt(body.email, address)
    if attempt.wait:
        raise ApiError(429, "Too many failed login attempts; try again later",
                       headers={"Retry-After": str(attempt.wait)})
    try:
        user = await ctx.run(ctx.commands.authenticate, body.email, body.password, passwords)
    except InvalidCredentialsError as exc:
        raise ApiError(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    await ctx.throttle.succeeded(body.email, address, attempt)
    outcome = await ctx.run(ctx.commands.start_session, claim, user.number, _new_token_id())
    tokens = _token_pair(ctx, user.number, str(outcome.value.id), outcome.value.token_id)
    return await ctx.respond(outcome, tokens, wait=False)


async def _verified_refresh(request: Request, ctx: Context) -> TokenClaims:
    body = await parse_body(request, RefreshRequest)
    try:
        claims = ctx.tokens.verify(body.refresh_token, "refresh")
        assert claims.session_id is not None
        session_id_from(claims.session_id)
        return claims
    except (InvalidTokenError, ValueError):
        raise ApiError(401, "Invalid or expired refresh token") from None


async def refresh(request: Request) -> Response:
    ctx = context(request)
    claims = await _verified_refresh(request, ctx)
    assert claims.session_id is not None
    session_id = session_id_from(claims.session_id)
    if await run_in_threadpool(ctx.commands.get_session, session_id) is None:
        raise ApiError(401, "Invalid or expired refresh token")
    try:
        outcome = await ctx.run(ctx.commands.rotate_session, session_id, claims.token_id,
                                _new_token_id())
    except RefreshTokenReusedError:
        raise ApiError(401, "Refresh token reuse detected; the session was revoked") from None
    except (SessionRevokedError, ConcurrentRefreshError) as exc:
        raise ApiError(401, f"Invalid refresh token: {exc}") from None
    session = outcome.value
    tokens = _token_pair(ctx, claims.user_id, str(session.id), session.token_id)
    return await ctx.respond(outcome, tokens, wait=False)


async def logout(request: Request) -> Response:
    """204 only once the session's tokens are refused everywhere (the `ended_sessions` read
    model every API process and gateway checks); 503 if the read models have not got there
    within CONSISTENCY_TIMEOUT, and the client sends the logout again."""
    ctx = context(request)
    claims = await _verified_refresh(request, ctx)
    assert claims.session_id is not None
    position = await ctx.run(ctx.commands.revoke_session, session_id_from(claims.session_id),
                             "logout")
    # None: revoked before (logging out twice is fine), maybe by a request not projected yet,
    # so the read models must reach everything in the log now
    target = position if position is not None else await run_in_threadpool(ctx.commands.log_head)
    if ctx.settings.consistency_timeout > 0:
        await ctx.waiter.wait_for(target, ctx.settings.consistency_timeout)
    if not await ctx.sessions.session_ended(claims.session_id):
        raise ApiError(503, "The logout is recorded but not in effect yet; send it again",
                       {"Retry-After": str(RETRY_AFTER_SECONDS)})
    headers = {"X-Event-Position": str(position)} if position is not None else None
    return Response(status_code=204, headers=headers)


def _new_token_id() -> str:
    return secrets.token_urlsafe(16)
