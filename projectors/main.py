"""The projector process: `python -m projectors` (run by `parley up` and compose).

Any number may run: one is active, the others stand by (projectors/leadership.py).

Two loops share the process: the read-model loop projects batches as the log grows, and the
publisher loop sends committed batches to NATS (a third task backfills projections added
later, projectors/backfill.py). They are decoupled on purpose: while NATS is
down, read models (and so read-your-writes) keep up; the publisher catches up from the log
when NATS is back, in order, with the same Nats-Msg-Ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading

from projectors.backfill import Backfill
from projectors.leadership import leadership
from projectors.publisher import Publisher, connect, ensure_stream
from projectors.runner import Batch, LiveProjector, LogListener, is_unavailable
from shared.settings import Settings

log = logging.getLogger("parley.projector")
IDLE_POLL_SECONDS = 1.0
PUBLISH_QUEUE_BATCHES = 64
RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 60.0

async def project(runner: LiveProjector, listener: LogListener,
                  batches: asyncio.Queue[Batch], stop: asyncio.Event) -> None:
    """Follow the log; hand each committed batch to the publisher if it has room.

    A batch that fails is tried again after a growing delay; from its POISON_ATTEMPTS-th try
    on, the runner isolates the events that fail and skips them (runner.py). Only a lost
    database connection ends the loop.
    """
    delay = RETRY_SECONDS
    while not stop.is_set():
        try:
            batch = await asyncio.to_thread(runner.process_batch)
        except Exception as exc:
            if is_unavailable(exc):
                raise
            log.exception("a batch after position %s failed (try %s); retrying in %.1f s",
                          runner.failed_after, runner.failures, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)
            continue
        delay = RETRY_SECONDS
        if batch is None:
            await asyncio.to_thread(listener.wait, IDLE_POLL_SECONDS)
            continue
        with contextlib.suppress(asyncio.QueueFull):
            batches.put_nowait(batch)  # if full, the publisher reads the log when it catches up


async def publish(publisher: Publisher, batches: asyncio.Queue[Batch],
                  stop: asyncio.Event) -> None:
    """Publish in log order; a batch that does not follow on is preceded by a catch-up."""
    while not stop.is_set():
        try:
            with contextlib.suppress(TimeoutError):
                batch = await asyncio.wait_for(batches.get(), IDLE_POLL_SECONDS)
                if batch.after > publisher.position:
                    await publisher.catch_up()  # a batch went missing (full queue, failure)
                await publisher.publish(batch.events, upto=batch.last)
            if batches.empty():
                await publisher.catch_up()
        except Exception as exc:
            log.warning("publishing to NATS failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(RETRY_SECONDS)


async def backfill(runner: LiveProjector, stop: asyncio.Event) -> None:
    """Bring late projections up to the live ones, off the live loop, until all have joined.

    A backfill that fails (a bug in a new projection) is logged, recorded for `parley
    projections status`, and retried with a growing delay; it never stops the live loop.
    """
    halt = threading.Event()
    watcher = asyncio.create_task(stop.wait())
    watcher.add_done_callback(lambda _: halt.set())
    delay = RETRY_SECONDS
    try:
        while runner.lagging and not stop.is_set():
            failed = False
            for projection in list(runner.lagging):
                try:
                    if not await asyncio.to_thread(Backfill(runner, projection).run, halt):
                        return  # stopping: the next start resumes from its tracked position
                except Exception:
                    log.exception("backfilling %s failed; retrying in %.0f s",
                                  projection.name, delay)
                    failed = True
            if failed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)
    finally:
        watcher.cancel()


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Follow the log until `stop` is set."""
    settings.require("database_url", "nats_url")
    runner = await asyncio.to_thread(LiveProjector, settings)
    listener = await asyncio.to_thread(LogListener, settings, runner.recorder.channel_name)
    nc = await connect(settings)
    try:
        js = nc.jetstream()
        await ensure_stream(js, settings)
        publisher = Publisher(js, runner)
        batches: asyncio.Queue[Batch] = asyncio.Queue(PUBLISH_QUEUE_BATCHES)
        log.info("projector running from position %s", runner.position)
        tasks = [asyncio.create_task(project(runner, listener, batches, stop)),
                 asyncio.create_task(publish(publisher, batches, stop)),
                 asyncio.create_task(backfill(runner, stop))]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            task.cancel()
        for task in done:
            if not task.cancelled() and task.exception():
                raise task.exception()  # type: ignore[misc]
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.drain(), 5)
        listener.close()
        runner.close()


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Stand by until this process holds the projector lock, project while it does, and start
    over (with a growing delay) after any failure, such as PostgreSQL restarting: the process
    carries on where the tracking positions say, without a person or a supervisor."""
    delay = RETRY_SECONDS
    while not stop.is_set():
        try:
            async with leadership(settings.database_url, stop) as lost:
                if stop.is_set():
                    break
                term = asyncio.Event()  # this term of office ends on stop or a lost lock
                relays = [asyncio.create_task(_relay(event, term)) for event in (stop, lost)]
                try:
                    await run(settings, term)
                finally:
                    for relay in relays:
                        relay.cancel()
            delay = RETRY_SECONDS
        except Exception:
            log.exception("the projector failed; starting again in %.1f s", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings.from_env()

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())


if __name__ == "__main__":
    main()
