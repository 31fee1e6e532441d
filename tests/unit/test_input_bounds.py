"""CONTRACT.md "Input bounds" at the HTTP edge: strings, body size, JSON depth, ids."""

from __future__ import annotations

import asyncio
import json
import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shared import schemas
from shared.schemas import Input, Printable, check_text
from shared.web.endpoints import MAX_BODY_BYTES, MAX_JSON_DEPTH, ApiError, int_param
from tests.unit.test_http_errors import SCOPE, app_of, drive, echo


def request_models() -> list[type[BaseModel]]:
    found, todo = [], list(Input.__subclasses__())
    while todo:
        model = todo.pop()
        found.append(model)
        todo.extend(model.__subclasses__())
    return found


def unchecked_strings(annotation: Any, metadata: list[Any], where: str) -> list[str]:
    """Where a string in `annotation` is accepted without the `Printable` check."""
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        return unchecked_strings(base, [*metadata, *extra], where)
    if isinstance(annotation, type) and issubclass(annotation, str):
        return [] if Printable in metadata else [where]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return []  # a model of its own: checked as one of the request models
    missing = []
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, dict):
        for arg in typing.get_args(annotation):
            missing += unchecked_strings(arg, [], where)
    return missing


def test_every_string_of_every_request_model_is_checked() -> None:
    models = request_models()
    assert {m.__name__ for m in models} >= {
        "RegisterRequest", "LoginRequest", "RefreshRequest", "ChatCreate", "ChatUpdate",
        "MembersAdd", "VoicePayload", "MessageCreate", "MessageEdit", "AttachmentCreate"}
    missing = [spot for model in models for name, field in model.model_fields.items()
               for spot in unchecked_strings(field.annotation, list(field.metadata),
                                             f"{model.__name__}.{name}")]
    assert missing == []


@pytest.mark.parametrize("text", ["a\x00b", "\x01", "x\x1f", "\x7f", "\x85", "\x9f", "\ud800",
                                  "lone \udfff"])
def test_control_characters_and_lone_surrogates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="must not contain"):
        check_text(text)


@pytest.mark.parametrize("text", ["tab\there", "lines\r\nand\nmore", "Привет 👋", "naïve ä\u00a0"])
def test_ordinary_text_passes_unchanged(text: str) -> None:
    assert check_text(text) == text


@pytest.mark.parametrize(("model", "body", "field"), [
    (schemas.RegisterRequest, {"email": "a@example.com", "password": "securePassword123",
                               "display_name": "A\x00B"}, "display_name"),
    (schemas.RegisterRequest, {"email": "a@example.com", "password": "securePassword123",
                               "display_name": "A", "avatar_url": "https://x/\x00"},
     "avatar_url"),
    (schemas.ChatCreate, {"title": "T\x00", "is_group": True, "member_ids": []}, "title"),
    (schemas.MessageCreate, {"chat_id": 1, "type": "text", "content": "hi\x00"}, "content"),
    (schemas.MessageEdit, {"content": "\x00"}, "content"),
    (schemas.AttachmentCreate, {"filename": "a\x00.opus", "content_type": "audio/opus"},
     "filename"),
    (schemas.LoginRequest, {"email": "a\x00@example.com", "password": "x"}, "email"),
])
def test_a_nul_in_any_field_is_a_field_error(model: type[BaseModel], body: dict[str, Any],
                                            field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    assert [e["loc"][0] for e in caught.value.errors()] == [field]


def test_a_blank_title_is_still_refused_after_stripping() -> None:
    with pytest.raises(ValidationError, match="at least 1 character"):
        schemas.ChatUpdate.model_validate({"title": "   "})


def answer(body: bytes) -> tuple[int, dict[str, Any]]:
    sent = drive(app_of(echo), [{"type": "http.request", "body": body}])
    return sent[0]["status"], json.loads(sent[1]["body"])


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def test_json_nested_32_deep_is_read_and_33_deep_is_400() -> None:
    assert answer(nested(MAX_JSON_DEPTH))[0] == 200
    status, body = answer(nested(MAX_JSON_DEPTH + 1))
    assert status == 400 and "nested deeper than 32" in body["detail"]


@pytest.mark.parametrize("body", [b"[" * 50_000, b'{"a":' * 5000 + b"1" + b"}" * 5000,
                                  b'"\\ud800"', b'{"a": NaN}', b"\xff\xfe"])
def test_hostile_json_is_400_not_a_server_error(body: bytes) -> None:
    status, answered = answer(body)
    assert status == 400 and answered["detail"]


def serve(chunks: list[dict[str, Any]], *headers: tuple[bytes, bytes]) -> list[dict[str, Any]]:
    """POST / to the echo app, taking body chunks off `chunks` only as the app asks."""
    scope = {**SCOPE, "headers": [*SCOPE["headers"], *headers]}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app_of(echo)(scope, receive, send))
    return sent


def test_a_body_streamed_past_the_limit_is_413_before_the_rest_is_read() -> None:
    chunk = b" " * 16 * 1024
    chunks = [{"type": "http.request", "body": chunk, "more_body": True} for _ in range(20)]
    sent = serve(chunks)
    assert sent[0]["status"] == 413
    # 64 KiB is passed by the fifth chunk: the fifteen after it were never asked for
    assert len(chunks) == 20 - (MAX_BODY_BYTES // len(chunk) + 1)


def test_a_declared_length_past_the_limit_is_413_before_anything_is_read() -> None:
    chunks = [{"type": "http.request", "body": b"{}", "more_body": True}]
    sent = serve(chunks, (b"content-length", b"10000000"))
    assert sent[0]["status"] == 413 and len(chunks) == 1


@pytest.mark.parametrize("raw", ["²", "\u0667", "\uff11", " 7", "7 ", "+7", "-7", "7_000", "0", "",
                                 "9223372036854775808", "1" * 5000, "0x10", "7.0"])
def test_ids_are_plain_ascii_integers_in_range(raw: str) -> None:
    with pytest.raises(ApiError) as caught:
        int_param(raw, "chat_id")
    assert caught.value.status == 400


@pytest.mark.parametrize(("raw", "number"), [("7", 7), ("007", 7),
                                             ("9223372036854775807", 2**63 - 1)])
def test_ids_in_range_are_read(raw: str, number: int) -> None:
    assert int_param(raw, "chat_id") == number
