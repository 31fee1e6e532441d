"""The projector process: `python -m projectors` (run by `parley up` and compose)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from projectors.publisher import Publisher, connect, ensure_stream
from projectors.runner import LogListener, ProjectionRunner
from shared.settings import Settings

log = logging.getLogger("parley.projector")
IDLE_POLL_SECONDS = 1.0


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Follow the log until `stop` is set: project a batch, then publish it."""
    settings.require("database_url", "nats_url")
    runner = await asyncio.to_thread(ProjectionRunner, settings)
    listener = await asyncio.to_thread(LogListener, settings, runner.recorder.channel_name)
    nc = await connect(settings)
    try:
        js = nc.jetstream()
        await ensure_stream(js, settings)
        publisher = Publisher(js, runner)
        await publisher.catch_up()
        log.info("projector running from position %s", runner.position)
        while not stop.is_set():
            batch = await asyncio.to_thread(runner.process_batch)
            if batch is None:
                await asyncio.to_thread(listener.wait, IDLE_POLL_SECONDS)
                continue
            await publisher.publish(batch.events)
    finally:
        await nc.drain()
        listener.close()
        runner.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings.from_env()

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())


if __name__ == "__main__":
    main()
