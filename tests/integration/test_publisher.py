"""Publishing to JetStream is tracked apart from the read models: a crash loses nothing and
republishing never duplicates (Nats-Msg-Id = log position)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import nats
import psycopg
import pytest
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.js.errors import NoStreamResponseError, NotFoundError

from domain.app import Claim, Parley
from parley.embedded import embedded_nats
from projectors.publisher import PUBLISHER, Publisher, ensure_stream
from projectors.runner import LiveProjector
from shared import subjects
from shared.settings import Settings

# what a publish gets with no stream: 503, or no answer when only a plain subscriber listens
NO_STREAM = (NoRespondersError, NoStreamResponseError, TimeoutError)


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    with embedded_nats(tmp_path) as url:  # a server of its own: the stream name is ours alone
        yield url


def stream_messages(url: str, stream: str) -> list[tuple[str, dict]]:
    async def read() -> list[tuple[str, dict]]:
        nc = await nats.connect(servers=url.split(","))
        js = nc.jetstream()
        info = await js.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                msg = await js.get_msg(stream, seq)
            except NotFoundError:  # deleted from the stream (parley erase-message): a gap
                continue
            out.append(((msg.headers or {})["Nats-Msg-Id"], json.loads(msg.data or b"{}")))
        await nc.close()
        return out

    return asyncio.run(read())


async def publish_all(settings: Settings, runner: LiveProjector) -> None:
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    await ensure_stream(js, settings)
    await Publisher(js, runner).catch_up()
    await nc.close()


def test_committed_but_unpublished_events_are_published_once(settings: Settings,
                                                             nats_url: str) -> None:
    settings = Settings(**{**settings.__dict__, "nats_url": nats_url})
    app = Parley(env=settings.eventsourcing_env())
    for i in range(300):  # several pipelined batches: the stream must keep log order
        app.register_user(Claim("anonymous", f"k{i}", "fp"), f"p{i}@example.com", "h",
                          f"P{i}", None, "t")
    runner = LiveProjector(settings, app=app)
    while runner.process_batch() is not None:
        pass  # read models committed; the process "crashes" before publishing anything

    asyncio.run(publish_all(settings, LiveProjector(settings, app=app)))
    published = stream_messages(nats_url, settings.nats_stream)
    assert [body["data"]["display_name"] for _, body in published] == [
        f"P{i}" for i in range(300)]
    assert all(msg_id == str(body["position"]) for msg_id, body in published)

    # A crash after the acks but before the publisher's tracking committed: publish again.
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("DELETE FROM projection_tracking WHERE application_name = %s",
                     (PUBLISHER,))
    asyncio.run(publish_all(settings, LiveProjector(settings, app=app)))
    assert stream_messages(nats_url, settings.nats_stream) == published
    app.close()


def test_a_batch_decodes_only_kept_events_and_the_publisher_still_reaches_its_end(
        settings: Settings, nats_url: str) -> None:
    settings = Settings(**{**settings.__dict__, "nats_url": nats_url})
    app = Parley(env=settings.eventsourcing_env())
    app.register_user(Claim("anonymous", "k", "fp"), "q@example.com", "h", "Q", None, "t")
    head = app.recorder.max_notification_id()
    runner = LiveProjector(settings, app=app)
    batch = runner.process_batch()
    assert batch is not None and batch.last == head
    # the user, its email index, its session and the key's record were appended; only the
    # user has a projection or a payload, so only it was decoded
    assert [type(event).__qualname__ for _, event in batch.events] == ["User.Registered"]
    assert head is not None and head >= batch.events[-1][0] + 1

    async def publish() -> int:
        nc = await nats.connect(settings.nats_url)
        js = nc.jetstream()
        await ensure_stream(js, settings)
        publisher = Publisher(js, runner)
        await publisher.publish(batch.events, upto=batch.last)
        await nc.close()
        return publisher.position

    assert asyncio.run(publish()) == head  # not at the user's position: no catch-up loop
    assert [event["event"] for _, event in stream_messages(nats_url, settings.nats_stream)] \
        == ["user.registered"]
    app.close()


def test_nats_retention_days_sets_and_updates_the_streams_max_age(nats_url: str) -> None:
    """NATS_RETENTION_DAYS is how long the stream keeps an event (and so how old a cursor may
    be): applied when the stream is created, and brought in line at the next start (JetStream
    enforces a stream's max_age itself)."""
    def settings(days: str) -> Settings:
        return Settings.from_env({"NATS_URL": nats_url, "NATS_RETENTION_DAYS": days})

    async def scenario() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        stream = settings("0.5").nats_stream
        try:
            await ensure_stream(js, settings("0.5"))
            assert (await js.stream_info(stream)).config.max_age == 43_200
            await ensure_stream(js, settings("0.01"))  # a restart with another setting
            assert (await js.stream_info(stream)).config.max_age == 864
        finally:
            await nc.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_stream_that_appears_mid_batch_still_gets_the_events_in_log_order(
        settings: Settings, nats_url: str) -> None:
    """What a NATS cluster electing a stream leader looks like to the publisher: no stream
    answers (503), then one does, possibly while a batch is being sent. The stream is created
    as soon as the first message of a try is on the wire; it must still hold every event once,
    in log order (the gateways drop an event older than the last they passed on)."""
    settings = Settings(**{**settings.__dict__, "nats_url": nats_url})
    app = Parley(env=settings.eventsourcing_env())
    for i in range(1000):  # one catch-up batch: sending it takes longer than creating a stream
        app.register_user(Claim("anonymous", f"k{i}", "fp"), f"m{i}@example.com", "h",
                          f"M{i}", None, "t")
    runner = LiveProjector(settings, app=app)
    while runner.process_batch() is not None:
        pass

    async def scenario() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        publisher = Publisher(js, runner)
        with contextlib.suppress(*NO_STREAM):  # no stream yet: nothing is stored
            await publisher.catch_up()
        created: list[asyncio.Task[None]] = []

        async def on_wire(msg: Msg) -> None:
            if not created:  # the stream appears while the rest of the try is being sent
                created.append(asyncio.create_task(ensure_stream(js, settings)))

        await nc.subscribe(subjects.all_subjects(), cb=on_wire)
        while publisher.position < runner.readmodels_position:
            with contextlib.suppress(*NO_STREAM):
                await publisher.catch_up()
        await nc.close()

    asyncio.run(asyncio.wait_for(scenario(), 120))
    published = stream_messages(nats_url, settings.nats_stream)
    assert [body["data"]["display_name"] for _, body in published] == [
        f"M{i}" for i in range(1000)]
    app.close()
