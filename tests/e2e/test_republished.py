"""An event the stream holds twice reaches each socket once, live and on resume.

JetStream drops a message whose `Nats-Msg-Id` it saw within its duplicate window (2 minutes).
A projector stopped for longer between publishing and tracking publishes the stretch again, and
then the stream holds those events twice. The test makes that happen for real: it lets the
window pass (shrunk for a moment) and publishes the copy as the projector would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import nats

from parley.stack import Stack
from projectors.publisher import stream_config
from shared.settings import Settings
from tests.e2e.client import Api, User
from tests.e2e.sockets import frames, opened, run, synced

SHORTEST_WINDOW = 0.1  # seconds: NATS refuses a shorter duplicate window
PURGE_TIMEOUT = 30.0  # the server purges ids at once when the window changes (nats-server)


async def republish(settings: Settings, sequence: int) -> int:
    """Publish the message at `sequence` again, same subject, body and Nats-Msg-Id, once
    JetStream has forgotten the id; returns the copy's sequence."""
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    config = stream_config(settings)
    try:
        original = await js.get_msg(settings.nats_stream, seq=sequence)
        assert original.subject and original.data and original.headers
        headers = {"Nats-Msg-Id": original.headers["Nats-Msg-Id"]}
        await js.update_stream(dataclasses.replace(config, duplicate_window=SHORTEST_WINDOW))
        deadline = time.monotonic() + PURGE_TIMEOUT
        while True:  # until the server has purged the id (one window, give or take)
            ack = await js.publish(original.subject, original.data, headers=headers,
                                   stream=settings.nats_stream)
            if not ack.duplicate:
                return ack.seq
            assert time.monotonic() < deadline, "JetStream did not forget the Nats-Msg-Id"
            await asyncio.sleep(SHORTEST_WINDOW / 2)
    finally:
        await js.update_stream(config)
        await nc.close()


def test_an_event_published_twice_reaches_each_socket_once(api: Api, stack: Stack) -> None:
    settings = Settings.from_env(stack.env)
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]

    async def scenario() -> None:
        live = await opened(stack, bob)
        before = await synced(live, ann, chat)
        once = ann.say(chat, "only once")
        (frame,) = await frames(live, 1)
        assert frame["data"] == once
        copy = await republish(settings, int(frame["cursor"]))
        assert copy > int(frame["cursor"])
        # A marker after the copy: whatever the socket gets before it is what the copy caused.
        after = ann.say(chat, "after the copy")
        assert [f["data"] for f in await frames(live, 1)] == [after]

        # Resuming from before the event: the event once, then what followed.
        resumed = await opened(stack, bob, cursor=before)
        assert [f["data"] for f in await frames(resumed, 2)] == [once, after]
        # Resuming from the event itself (the client has it) and from the copy: not again.
        at_event = await opened(stack, bob, cursor=frame["cursor"])
        at_copy = await opened(stack, bob, cursor=str(copy))
        for ws in (at_event, at_copy):
            assert [f["data"] for f in await frames(ws, 1)] == [after]
        last = ann.say(chat, "still live")
        for ws in (live, resumed, at_event, at_copy):
            assert [f["data"] for f in await frames(ws, 1)] == [last]
            await ws.close()

    run(scenario())
