"""Who may open `/ws`: a browser page from an allowed Origin (or no browser) with an access token.

Refusals accept the handshake and then close with an application code, sending nothing before
the close. Closing before accept would turn into an HTTP 403 on the upgrade request, and
browsers report every failed handshake as code 1006 with no detail, so a page could not tell
"get a fresh token" (4401) or "wrong site" (4403) from "the network is down"; after accept,
`onclose` sees the code.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.websockets import WebSocket

from gateway.protocol import CLOSE_FORBIDDEN_ORIGIN, CLOSE_UNAUTHORIZED
from shared.cors import CorsPolicy
from shared.jwt.tokens import InvalidTokenError, TokenClaims, TokenService


def presented_token(websocket: WebSocket) -> str | None:
    """`Authorization: Bearer` (non-browser clients), else `?token=` (browsers cannot set it)."""
    scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return websocket.query_params.get("token") or None


def origin_allowed(origin: str | None, host: str | None, cors: CorsPolicy) -> bool:
    """A page from an origin CORS_ORIGINS allows (as the HTTP services' CORS does), or from
    this very host (a page Parley serves itself is never cross-origin).

    Cross-site WebSocket hijacking needs a browser, and browsers always send Origin: a request
    without one comes from a non-browser client, which has to present its own token anyway.
    """
    if origin is None:
        return True
    origin = origin.lower()
    if cors.allows(origin):
        return True
    return bool(host) and urlsplit(origin).netloc == (host or "").lower()


async def refuse(websocket: WebSocket, code: int, reason: str) -> None:
    await websocket.accept()
    await websocket.close(code, reason)


async def admit(websocket: WebSocket, tokens: TokenService,
                cors: CorsPolicy) -> TokenClaims | None:
    """The verified claims, or None once the client has been refused (Origin first: a foreign
    page learns nothing about the token it sent)."""
    headers = websocket.headers
    if not origin_allowed(headers.get("origin"), headers.get("host"), cors):
        await refuse(websocket, CLOSE_FORBIDDEN_ORIGIN, "origin not allowed")
        return None
    token = presented_token(websocket)
    if token is None:
        await refuse(websocket, CLOSE_UNAUTHORIZED, "access token required")
        return None
    try:
        return tokens.verify(token, "access")
    except InvalidTokenError:
        await refuse(websocket, CLOSE_UNAUTHORIZED, "invalid or expired access token")
        return None
