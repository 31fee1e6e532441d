"""Public payload models: one definition of each shape, for the APIs, NATS payloads and tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    PlainSerializer,
    StringConstraints,
)


def format_timestamp(value: datetime) -> str:
    """UTC ISO-8601 with a `Z`, so browsers never read it as local time (CONTRACT.md)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]


def _http_url(value: str | None) -> str | None:
    if value is not None and not value.lower().startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return value


HttpUrl = Annotated[str | None, StringConstraints(max_length=2048), AfterValidator(_http_url)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# ASVS V6.2: at least 8, long passphrases allowed and never truncated; a bound keeps hashing cheap.
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024)]


class Input(BaseModel):
    """Request bodies: unknown fields are refused rather than silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    """Response and event payloads."""


# -- auth ----------------------------------------------------------------------------------

class RegisterRequest(Input):
    email: EmailStr = Field(max_length=254)
    password: Password
    display_name: DisplayName
    avatar_url: HttpUrl = None

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "email": "user@example.com", "password": "securePassword123",
        "display_name": "John Doe", "avatar_url": "https://example.com/avatar.jpg"}]})


class LoginRequest(Input):
    email: Annotated[str, StringConstraints(min_length=1, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "email": "user@example.com", "password": "securePassword123"}]})


class RefreshRequest(Input):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class TokenPair(Output):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: float


# -- users ---------------------------------------------------------------------------------

class UserOut(Output):
    """The caller's own account (`GET /users/me`)."""

    id: int
    email: str
    display_name: str
    avatar_url: str | None
    created_at: Timestamp


class PublicUser(Output):
    """Another user's public profile: never the email."""

    id: int
    display_name: str
    avatar_url: str | None


class RegisterResponse(Output):
    user: UserOut
    tokens: TokenPair


# -- errors --------------------------------------------------------------------------------

class FieldError(Output):
    field: str
    message: str


class ErrorOut(Output):
    """Every error body: `detail`, plus field errors for validation failures."""

    detail: str
    errors: list[FieldError] | None = None
    original_status: int | None = None


def dump(model: BaseModel) -> dict[str, Any]:
    """JSON-ready dict of a payload (timestamps as strings)."""
    return model.model_dump(mode="json", exclude_none=False)
