"""Public payload models: one definition of each shape, for the APIs, NATS payloads and tests."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    Strict,
    StrictBool,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema


def format_timestamp(value: datetime) -> str:
    """UTC ISO-8601 with a `Z`, so browsers never read it as local time (CONTRACT.md)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]


# Every string a client sends (CONTRACT.md "Input bounds"): no NUL, no other C0/C1 control
# character but tab, newline and carriage return (DEL counted with them), no lone surrogate.
# PostgreSQL text cannot hold a NUL; lone surrogates cannot be encoded as UTF-8 at all.
FORBIDDEN_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def check_text(value: str) -> str:
    """`value` unchanged, or ValueError naming the first character a client may not send."""
    found = FORBIDDEN_CHARACTERS.search(value)
    if found is not None:
        raise ValueError(f"must not contain U+{ord(found.group()):04X} (control characters other"
                         " than tab and line breaks, and lone surrogates, are refused)")
    return value


# Every client string of a request body is `Annotated[str, StringConstraints(...), Printable]`
# (`Printable` last: it checks what the constraints left, after stripping); a unit test walks
# every request model to keep it so.
class _Printable:
    """`check_text` after pydantic's own checks, and in the JSON schema as a `pattern`, so the
    OpenAPI document says what is refused (unless the field has a stricter pattern already)."""

    PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(check_text, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        if json_schema.get("type") == "string":
            json_schema.setdefault("pattern", self.PATTERN)
        return json_schema


Printable = _Printable()


def _http_url(value: str | None) -> str | None:
    if value is not None and not value.lower().startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return value


HttpUrl = Annotated[Annotated[str, StringConstraints(max_length=2048), Printable] | None,
                    AfterValidator(_http_url)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                max_length=100), Printable]
# ASVS V6.2: at least 8, long passphrases allowed and never truncated; a bound keeps hashing cheap.
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024), Printable]


class Input(BaseModel):
    """Request bodies: unknown fields are refused rather than silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    """Response and event payloads."""


# -- auth ----------------------------------------------------------------------------------

class RegisterRequest(Input):
    email: Annotated[EmailStr, Printable] = Field(max_length=254)
    password: Password
    display_name: DisplayName
    avatar_url: HttpUrl = None

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "email": "user@example.com", "password": "securePassword123",
        "display_name": "John Doe", "avatar_url": "https://example.com/avatar.jpg"}]})


class LoginRequest(Input):
    email: Annotated[str, StringConstraints(min_length=1, max_length=254), Printable]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024), Printable]

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "email": "user@example.com", "password": "securePassword123"}]})


class RefreshRequest(Input):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=4096), Printable]


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


# -- chats ---------------------------------------------------------------------------------

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
                  Printable]
# Strict: "1" or true are not ids, "yes" is not a boolean (lax coercion would accept them).
# The id of a user, chat or message: a positive bigint, never a string or a float.
RecordId = Annotated[int, Strict(), Field(ge=1, le=2**63 - 1)]


class ChatCreate(Input):
    title: Title | None = None
    is_group: StrictBool
    member_ids: Annotated[list[RecordId], Field(max_length=500)]

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "title": "New Project Discussion", "is_group": True, "member_ids": [2, 3, 4]}]})


class ChatUpdate(Input):
    title: Title

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "title": "Updated Chat Title"}]})


class MembersAdd(Input):
    user_ids: Annotated[list[RecordId], Field(min_length=1, max_length=500)]


class ChatOut(Output):
    """A chat as its members see it (a direct chat's title: `domain.chat.title_seen_by`)."""

    id: int
    title: str | None
    is_group: bool
    created_at: Timestamp
    creator_id: int
    last_activity_at: Timestamp | None = None


class MembersOut(Output):
    """The chat's members after a change."""

    chat_id: int
    member_ids: list[int]


class MemberOut(Output):
    id: int
    display_name: str
    avatar_url: str | None
    joined_at: Timestamp
    last_read_message_id: int | None = None
    online: bool = False
    last_seen_at: Timestamp | None = None


# -- messages ------------------------------------------------------------------------------

class VoicePayload(Input):
    attachment_id: UUID
    duration_ms: Annotated[int, Strict(), Field(ge=1, le=600_000)]
    codec: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.+-]{0,19}$"), Printable]
    waveform: Annotated[list[Annotated[int, Strict(), Field(ge=0, le=255)]],
                        Field(max_length=512)] | None = None


class MessageCreate(Input):
    chat_id: RecordId
    type: Literal["text", "voice", "system"]
    content: Annotated[str, StringConstraints(max_length=4000), Printable] | None = None
    payload: VoicePayload | None = None
    reply_to_id: RecordId | None = None  # a message of the same chat

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"chat_id": 1, "type": "text", "content": "Hello everyone!"},
        {"chat_id": 1, "type": "text", "content": "Agreed", "reply_to_id": 41},
        {"chat_id": 1, "type": "voice", "content": None, "payload": {
            "attachment_id": "550e8400-e29b-41d4-a716-446655440000", "duration_ms": 5000,
            "codec": "opus", "waveform": [10, 20, 30, 40, 50]}}]})


class MessageEdit(Input):
    content: Annotated[str, StringConstraints(min_length=1, max_length=4000), Printable]
    payload: None = None

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "content": "Updated message text", "payload": None}]})


class ReactionCount(Output):
    """One emoji on a message: how many reacted with it, and who (in the order they did)."""

    emoji: str
    count: int
    user_ids: list[int]


class MessageOut(Output):
    """A message exactly as REST returns it and WebSocket frames carry it (`reactions`: ordered
    by first use; always empty in `message.created`/`message.updated` frames, which are a
    function of their event alone: reaction frames carry the changes)."""

    id: int
    chat_id: int
    author_id: int
    type: str
    content: str | None
    payload: dict[str, Any] | None
    ts: Timestamp
    edited_at: Timestamp | None = None
    reply_to_id: int | None = None
    reactions: list[ReactionCount] = Field(default_factory=list)

    @classmethod
    def of(cls, message: MessageFields, ts: datetime,
           edited_at: datetime | None = None) -> MessageOut:
        """From the domain's names: the `Message` aggregate and its `Posted`/`Edited` events
        all carry them, so the command API and the live payloads map them here, once."""
        return cls(id=message.number, chat_id=message.chat, author_id=message.author,
                   type=message.type, content=message.content, payload=message.payload,
                   ts=ts, edited_at=edited_at, reply_to_id=message.reply_to)


class MessageFields(Protocol):
    """A message as the domain names its fields (aggregate and events alike)."""

    @property
    def number(self) -> int: ...
    @property
    def chat(self) -> int: ...
    @property
    def author(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def content(self) -> str | None: ...
    @property
    def payload(self) -> dict[str, Any] | None: ...
    @property
    def reply_to(self) -> int | None: ...


# -- conversation state --------------------------------------------------------------------

class ChatView(ChatOut):
    """A chat as `GET /chats` shows it to one member: with their read state and its newest
    message (null if none is left)."""

    unread_count: int = 0
    last_read_message_id: int | None = None
    last_message: MessageOut | None = None


class MarkRead(Input):
    message_id: RecordId

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"message_id": 42}]})


class ReadState(Output):
    """The caller's read marker in a chat, and what is still unread after it."""

    chat_id: int
    last_read_message_id: int | None
    unread_count: int


Emoji = Annotated[str, StringConstraints(min_length=1, max_length=32), Printable]


class ReactionAdd(Input):
    """The rest of the rule (no spaces, one URL path segment) is the domain's: `check_emoji`."""

    emoji: Emoji

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"emoji": "👍"}]})


class ReactionOut(Output):
    """One reaction added or removed: the answer to adding it, and the data of the
    `message.reaction_added` / `message.reaction_removed` frames."""

    message_id: int
    chat_id: int
    user_id: int
    emoji: str


class MessageVersion(Output):
    """One version of a message: the post, or an edit."""

    content: str | None
    at: Timestamp


# -- attachments ---------------------------------------------------------------------------

class AttachmentCreate(Input):
    filename: Annotated[str, StringConstraints(min_length=1, max_length=255), Printable]
    content_type: Annotated[str, StringConstraints(min_length=3, max_length=127), Printable]

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "filename": "audio.opus", "content_type": "audio/opus"}]})


class AttachmentUpload(Output):
    """A presigned POST: send every `fields` entry, then the file, to `url`."""

    attachment_id: UUID
    url: str
    fields: dict[str, str]
    expires_at: Timestamp


class AttachmentDownload(Output):
    url: str
    expires_at: Timestamp


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


# -- typing and presence (live only: never in the event log) ------------------------------

class ProfileOut(PublicUser):
    """`GET /users/{id}`: the public profile, and whether the user is online right now."""

    online: bool = False
    last_seen_at: Timestamp | None = None  # null while online, and for one never seen


class TypingOut(Output):
    """The `typing` frame's data: `user_id` is typing in `chat_id`."""

    chat_id: int
    user_id: int


class PresenceOut(Output):
    """The `presence` frame's data; `last_seen_at` is null while online."""

    user_id: int
    online: bool
    last_seen_at: Timestamp | None = None
