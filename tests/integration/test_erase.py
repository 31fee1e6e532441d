"""`parley erase-message`: a deleted message's text leaves the log, the stream and storage,
and every read model still replays and verifies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from domain.app import Claim, Parley
from domain.message import Message
from parley.embedded import embedded_nats
from parley.erase import NotDeletedError, erase_message
from projectors.runner import LiveProjector, live_projections
from projectors.verify import verify
from shared.settings import Settings
from tests.integration.test_publisher import publish_all, stream_messages
from tests.integration.workload import Uploaded

SECRET, EDITED = "my secret address", "my secret phone"


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    with embedded_nats(tmp_path) as url:
        yield url


def claim(user: int, n: int) -> Claim:
    return Claim(f"user:{user}", f"erase-{n}", "fp")


def stored_text(settings: Settings) -> bytes:
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute("SELECT state FROM parley_events").fetchall()
    return b"\n".join(bytes(row[0]) for row in rows)


def test_erasing_a_deleted_message(settings: Settings, nats_url: str) -> None:
    settings = Settings(**{**settings.__dict__, "nats_url": nats_url})
    app = Parley(env=settings.eventsourcing_env())
    for n in (1, 2):
        app.register_user(Claim("anonymous", f"r{n}", "fp"), f"e{n}@example.com", "h",
                          f"E{n}", None, "t")
    chat = app.create_chat(claim(1, 1), 1, "Team", True, [2]).value[0].number
    secret = app.post_message(claim(1, 2), 1, chat, "text", SECRET, None).value.number
    app.edit_message(claim(1, 3), 1, secret, EDITED)
    kept = app.post_message(claim(2, 4), 2, chat, "text", "kept", None).value.number
    attachment = app.uploads.slot("voice.opus", "audio/opus")
    app.request_attachment(claim(1, 5), 1, attachment.attachment_id, attachment.key,
                           attachment.filename, attachment.content_type)
    voice: dict[str, Any] = {"attachment_id": str(attachment.attachment_id),
                             "duration_ms": 900, "codec": "opus"}
    spoken = app.post_message(claim(1, 6), 1, chat, "voice", None, voice,
                              stat=lambda key: Uploaded(1, "audio/opus")).value.number

    with pytest.raises(NotDeletedError):  # erasing needs the deletion first
        erase_message(settings, secret)
    app.delete_message(claim(1, 7), 1, secret)
    app.delete_message(claim(1, 8), 1, spoken)
    runner = LiveProjector(settings, app=app)
    while runner.process_batch() is not None:
        pass
    asyncio.run(publish_all(settings, LiveProjector(settings, app=app)))
    assert SECRET.encode() in stored_text(settings)
    assert any(SECRET in json.dumps(body) for _, body in stream_messages(nats_url, "PARLEY"))

    erased = erase_message(settings, secret)
    assert erased.events == 2  # the post and the edit
    assert len(erased.stream_messages) == 2  # message.created and message.updated
    text = stored_text(settings)
    assert SECRET.encode() not in text and EDITED.encode() not in text
    published = [body for _, body in stream_messages(nats_url, "PARLEY")]
    assert not any(SECRET in json.dumps(body) or EDITED in json.dumps(body)
                   for body in published)
    assert any(body["data"].get("content") == "kept" for body in published)

    assert settings.s3_endpoint  # the session's S3: the file goes (a missing one is no error)
    spoken_erased = erase_message(settings, spoken)
    assert spoken_erased.objects == [attachment.key] and spoken_erased.events == 1

    # the log still loads, replays and verifies: positions and versions are untouched
    fresh = Parley(env=settings.eventsourcing_env())
    message = fresh.repository.get(Message.create_id(secret))
    assert message.deleted and message.content is None
    assert fresh.repository.get(Message.create_id(kept)).content == "kept"
    verdicts = verify(settings, live_projections(), app=fresh)
    assert verdicts and all(v.equal for v in verdicts)
    fresh.close()
    app.close()
