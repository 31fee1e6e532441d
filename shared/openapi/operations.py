"""The public API as a declarative table: one `Operation` per route, read by `shared.openapi`.

The vocabulary is in `shared.openapi.types`; the chat, message and attachment operations are in
`shared.openapi.chats` and `shared.openapi.messages`.
"""

from __future__ import annotations

from shared.openapi.chats import CHATS
from shared.openapi.messages import ATTACHMENTS, MESSAGES, REACTIONS
from shared.openapi.search import SEARCH
from shared.openapi.types import API, Operation, Response
from shared.schemas import (
    LoginRequest,
    ProfileOut,
    RefreshRequest,
    RegisterRequest,
    RegisterResponse,
    TokenPair,
    UserOut,
)

# Mirrors the seed's examples, with the `Z` CONTRACT.md adds to timestamps.
TOKENS_EXAMPLE = {"access_token": "eyJ0eXAiOiJKV1QiLCJhbGc...",
                  "refresh_token": "eyJ0eXAiOiJKV1QiLCJhbGc...",
                  "token_type": "bearer", "expires_in": 900.0}
USER_EXAMPLE = {"id": 1, "email": "user@example.com", "display_name": "John Doe",
                "avatar_url": "https://example.com/avatar.jpg",
                "created_at": "2024-03-26T10:00:00Z"}
PUBLIC_USER_EXAMPLE = {key: USER_EXAMPLE[key] for key in ("id", "display_name", "avatar_url")}

TAGS: dict[str, str] = {
    "auth": "Accounts and tokens: register, login, refresh (rotating), logout.",
    "users": "The caller's account and other users' public profiles.",
    "chats": "Group and direct chats and their members.",
    "messages": "Text and voice messages of a chat, newest first.",
    "attachments": "Voice files: presigned uploads straight to object storage, and short-lived "
                   "download URLs.",
    "search": "Finding messages of the caller's chats by the words they contain.",
    "service": "Health, readiness and metrics of each service; no authentication.",
}

SERVICE_STATUS = {"type": "object", "required": ["status"],
                  "properties": {"status": {"type": "string"}, "detail": {"type": "string"}}}

AUTH: list[Operation] = [
    Operation(
        "POST", f"{API}/auth/register", "Register a new user", "auth",
        request=RegisterRequest, auth=False,
        description="Creates the account and logs it in. The email is compared "
                    "case-insensitively; `avatar_url` is optional and must be http(s). "
                    "Registrations per client address are limited (429).",
        responses={
            201: Response("The new user and its first token pair.", RegisterResponse,
                          example={"user": USER_EXAMPLE, "tokens": TOKENS_EXAMPLE},
                          headers=("Location",)),
            400: "Validation error, email already registered, or a bad `Idempotency-Key`.",
            409: "Duplicate request: the `Idempotency-Key` was already used.",
            429: Response("Too many registrations from this client address; retry after "
                          "`Retry-After` seconds.", headers=("Retry-After",)),
        }),
    Operation(
        "POST", f"{API}/auth/login", "Log in with email and password", "auth",
        request=LoginRequest, auth=False,
        description="Unknown email and wrong password get the same 401. Repeated failures "
                    "for one account or one client address are throttled (429).",
        responses={
            200: Response("A new token pair.", TokenPair, example=TOKENS_EXAMPLE),
            400: "Validation error or a bad `Idempotency-Key`.",
            401: "Invalid email or password.",
            409: "Duplicate request: the `Idempotency-Key` was already used.",
            429: Response("Too many failed logins; retry after `Retry-After` seconds.",
                          headers=("Retry-After",)),
        }),
    Operation(
        "POST", f"{API}/auth/refresh", "Rotate the token pair", "auth",
        request=RefreshRequest, auth=False, idempotent=False,
        request_example={"refresh_token": "eyJ0eXAiOiJKV1QiLCJhbGc..."},
        description="Returns a new pair; the presented refresh token stops working. Presenting "
                    "an already-rotated refresh token again revokes the whole login (401). "
                    "No `Idempotency-Key` needed.",
        responses={
            200: Response("A new token pair.", TokenPair, example=TOKENS_EXAMPLE),
            400: "Validation error.",
            401: "Invalid, expired, revoked or reused refresh token (or an access token).",
        }),
    Operation(
        "POST", f"{API}/auth/logout", "Log out (revoke the refresh token's login)", "auth",
        request=RefreshRequest, auth=False, idempotent=False,
        request_example={"refresh_token": "eyJ0eXAiOiJKV1QiLCJhbGc..."},
        description="Ends the presented token's login: every refresh token of it is revoked, "
                    "and its access tokens are refused from the moment this answers (HTTP "
                    "401, WebSocket sockets closed with 4401). Other logins of the same user "
                    "keep working. No `Idempotency-Key` needed. If the read models do not "
                    "reflect the logout within the bounded wait, it answers 503 instead of a "
                    "204 that would not hold yet: send it again.",
        responses={
            204: None,
            400: "Validation error.",
            401: "Invalid or expired refresh token.",
            503: "The logout is recorded but not in effect yet; retry after `Retry-After`.",
        }),
]

USERS: list[Operation] = [
    Operation(
        "GET", f"{API}/users/me", "The caller's account", "users",
        responses={
            200: Response("The caller's account.", UserOut, example=USER_EXAMPLE),
            401: "Missing, invalid or expired access token, or one whose login was logged out.",
            404: "The account is not in the read model (yet).",
        }),
    Operation(
        "GET", f"{API}/users/{{user_id}}", "Another user's public profile", "users",
        description="Any authenticated user may read it; it never includes the email.",
        responses={
            200: Response("The public profile, with `online` and `last_seen_at` (null while"
                          " online or never seen).", ProfileOut,
                          example={**PUBLIC_USER_EXAMPLE, "online": False,
                                   "last_seen_at": "2024-03-26T10:00:00Z"}),
            400: "`user_id` is not a positive integer.",
            401: "Missing, invalid or expired access token, or one whose login was logged out.",
            404: "No such user.",
        }),
]

SERVICE: list[Operation] = [
    Operation(
        "GET", "/healthz", "Liveness", "service", auth=False,
        description="The process is up. Served by every service.",
        responses={200: Response("Alive.", schema=SERVICE_STATUS, example={"status": "ok"})}),
    Operation(
        "GET", "/readyz", "Readiness", "service", auth=False,
        description="Dependencies reachable and projections not lagging too far behind.",
        responses={
            200: Response("Ready.", schema=SERVICE_STATUS, example={"status": "ready"}),
            503: Response("Not ready, with the reason.", schema=SERVICE_STATUS,
                          example={"status": "unavailable", "detail": "starting"}),
        }),
    Operation(
        "GET", "/metrics", "Prometheus metrics", "service", auth=False,
        responses={200: Response("Prometheus text exposition format.",
                                 schema={"type": "string"}, media_type="text/plain")}),
]

OPERATIONS: list[Operation] = [*AUTH, *USERS, *CHATS, *MESSAGES, *ATTACHMENTS, *SERVICE,
                               *REACTIONS, *SEARCH]
