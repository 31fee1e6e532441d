"""The projector publishes public payloads to JetStream, once per log position."""

from __future__ import annotations

import asyncio
import json

import nats

from parley.stack import Stack
from shared import subjects
from shared.settings import Settings
from tests.e2e.client import Api


async def last_message(stack: Stack, subject: str) -> tuple[dict, dict]:
    settings = Settings.from_env(stack.env)
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        for _ in range(50):  # publishing follows the read-model commit by a few ms
            try:
                msg = await js.get_last_msg(settings.nats_stream, subject)
                return json.loads(msg.data or b"{}"), dict(msg.headers or {})
            except nats.js.errors.NotFoundError:
                await asyncio.sleep(0.1)
        raise AssertionError(f"nothing published on {subject}")
    finally:
        await nc.close()


def test_registration_is_published_without_private_fields(api: Api, stack: Stack) -> None:
    response = api.post("/auth/register", {"email": "pub-" + api.register()["user"]["email"],
                                           "password": "securePassword123",
                                           "display_name": "Published"})
    assert response.status_code == 201
    user = response.json()["user"]
    body, headers = asyncio.run(last_message(stack, subjects.user(user["id"])))
    assert body["event"] == "user.registered"
    assert body["data"] == {"id": user["id"], "display_name": "Published", "avatar_url": None}
    assert headers["Nats-Msg-Id"] == str(body["position"])
    assert 0 < body["position"] <= int(response.headers["X-Event-Position"])
    assert "email" not in json.dumps(body) and "password" not in json.dumps(body)
