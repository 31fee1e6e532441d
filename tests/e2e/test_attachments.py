"""Voice attachments: presigned upload straight to S3, then a voice message, then download."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.client import Api, User

AUDIO = b"OggS" + bytes(range(256)) * 8


def presign(user: User, filename: str = "voice.opus", content_type: str = "audio/opus"
            ) -> dict[str, Any]:
    response = user.post("/attachments", {"filename": filename, "content_type": content_type})
    assert response.status_code == 200, response.text
    return response.json()


def upload(presigned: dict[str, Any], data: bytes = AUDIO, **overrides: str) -> httpx.Response:
    """What a browser does: every returned field, then the file, as multipart/form-data."""
    fields = {**presigned["fields"], **overrides}
    return httpx.post(presigned["url"], data=fields, files={"file": ("blob", data)}, timeout=30)


def voice(user: User, chat: int, attachment_id: str) -> httpx.Response:
    return user.post("/messages", {"chat_id": chat, "type": "voice", "content": None, "payload": {
        "attachment_id": attachment_id, "duration_ms": 5000, "codec": "opus",
        "waveform": [10, 20, 30, 40, 50]}})


def test_scenario_3_upload_and_send_voice(api: Api) -> None:
    ann, bob, eve = User(api), User(api), User(api)
    chat = ann.group(bob)["id"]
    presigned = presign(ann)
    assert set(presigned) >= {"attachment_id", "url", "fields", "expires_at"}
    assert presigned["fields"]["key"].startswith(presigned["attachment_id"] + "/")
    assert presigned["fields"]["Content-Type"] == "audio/opus"
    assert "x-amz-signature" in {k.lower() for k in presigned["fields"]}
    assert upload(presigned).status_code in (200, 201, 204)
    attachment_id = presigned["attachment_id"]
    assert ann.get(f"/attachments/{attachment_id}").status_code == 200
    assert bob.get(f"/attachments/{attachment_id}").status_code == 404  # not posted yet
    sent = voice(ann, chat, attachment_id)
    assert sent.status_code == 201, sent.text
    message = sent.json()
    assert message["type"] == "voice" and message["content"] is None
    assert message["payload"] == {"attachment_id": attachment_id, "duration_ms": 5000,
                                  "codec": "opus", "waveform": [10, 20, 30, 40, 50]}
    assert bob.get("/messages", chat_id=chat).json()[0] == message
    download = bob.get(f"/attachments/{attachment_id}")
    assert download.status_code == 200
    assert httpx.get(download.json()["url"]).content == AUDIO
    assert eve.get(f"/attachments/{attachment_id}").status_code == 404


def test_voice_needs_an_uploaded_attachment_of_the_author(api: Api) -> None:
    ann, bob = User(api), User(api)
    chat = ann.group(bob)["id"]
    never_uploaded = presign(ann)
    assert voice(ann, chat, never_uploaded["attachment_id"]).status_code == 400
    bobs = presign(bob)
    assert upload(bobs).status_code in (200, 201, 204)
    assert voice(ann, chat, bobs["attachment_id"]).status_code == 400
    assert voice(ann, chat, "00000000-0000-4000-8000-000000000000").status_code == 400
    assert voice(User(api), chat, bobs["attachment_id"]).status_code == 403  # not a member


def test_storage_refuses_uploads_outside_the_policy(api: Api) -> None:
    ann = User(api)
    presigned = presign(ann)
    assert upload(presigned, **{"Content-Type": "image/png"}).status_code == 403
    assert upload(presigned, data=b"x" * (1024 * 1024 + 1)).status_code == 400
    assert upload(presigned, key=presigned["fields"]["key"] + "x").status_code == 403
    chat = ann.group(User(api))["id"]
    assert voice(ann, chat, presigned["attachment_id"]).status_code == 400  # nothing stored


@pytest.mark.parametrize("body", [
    {"filename": "a.png", "content_type": "image/png"},
    {"filename": "a.opus", "content_type": "audio/opus; codecs=opus"},
    {"filename": "", "content_type": "audio/opus"},
    {"filename": "../..", "content_type": "audio/opus"},
    {"filename": "a.opus"},
])
def test_attachment_request_validation(api: Api, body: dict) -> None:
    response = User(api).post("/attachments", body)
    assert response.status_code == 400, response.text


def test_attachment_lookup_errors(api: Api) -> None:
    ann = User(api)
    assert ann.get("/attachments/not-a-uuid").status_code == 400
    assert ann.get("/attachments/00000000-0000-4000-8000-000000000000").status_code == 404
