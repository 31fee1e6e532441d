"""Concurrent appends never let the projector step over an event (commit order = log order).

Writers are separate processes, as command API workers are, so commits really interleave, and
a test-only trigger stretches each append's transaction by a random few milliseconds, the way
a busy machine descheduling a writer between its INSERT and its COMMIT would.
"""

from __future__ import annotations

import multiprocessing
import threading
import time

import psycopg

from domain.app import Claim, Parley
from projectors.runner import LiveProjector
from shared.settings import Settings

WRITERS, MESSAGES = 6, 100


def write(env: dict[str, str], writer: int, chat: int) -> None:
    app = Parley(env=env)
    for i in range(MESSAGES):
        app.post_message(Claim("user:1", f"{writer}-{i}", "fp"), 1, chat, "text",
                         f"{writer}-{i}", None)
    app.close()


def test_projector_misses_nothing_while_many_writers_append(settings: Settings) -> None:
    env = settings.eventsourcing_env()
    app = Parley(env=env)
    app.register_user(Claim("anonymous", "r", "fp"), "w@example.com", "h", "W", None, "t")
    chat, _ = app.create_chat(Claim("user:1", "c", "fp"), 1, "load", True, []).value
    runner = LiveProjector(settings, app=app)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION slow_append() RETURNS trigger LANGUAGE plpgsql AS"
                     " $$ BEGIN PERFORM pg_sleep(random() * 0.005); RETURN NULL; END $$")
        conn.execute("CREATE TRIGGER slow_append AFTER INSERT ON parley_events"
                     " FOR EACH STATEMENT EXECUTE FUNCTION slow_append()")
    done = threading.Event()

    def follow() -> None:  # the live projector, reading while the writers commit
        while not done.is_set():
            runner.process_batch(limit=20)

    follower = threading.Thread(target=follow)
    follower.start()
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=write, args=(env, w, chat.number))
               for w in range(WRITERS)]
    for process in writers:
        process.start()
    for process in writers:
        process.join()
        assert process.exitcode == 0
    done.set()
    follower.join()
    while runner.process_batch() is not None:
        pass
    with psycopg.connect(settings.database_url) as conn:
        projected = conn.execute("SELECT count(*) FROM messages WHERE type = 'text'").fetchone()
    assert projected == (WRITERS * MESSAGES,)
    app.close()


def test_appends_go_on_while_vacuum_or_analyze_holds_the_events_table(
        settings: Settings) -> None:
    """(Auto)VACUUM and ANALYZE take SHARE UPDATE EXCLUSIVE on the table; eventsourcing's
    `LOCK TABLE ... EXCLUSIVE` waited for them, stopping every write meanwhile."""
    app = Parley(env=settings.eventsourcing_env())
    app.register_user(Claim("anonymous", "r", "fp"), "v@example.com", "h", "V", None, "t")
    with psycopg.connect(settings.database_url) as maintenance:
        maintenance.execute("LOCK TABLE parley_events IN SHARE UPDATE EXCLUSIVE MODE")
        started = time.monotonic()
        chat, _ = app.create_chat(Claim("user:1", "c", "fp"), 1, "during", True, []).value
        assert time.monotonic() - started < 2.0  # not the 5 s lock_timeout, and no error
        maintenance.rollback()
    assert chat.number == 1
    app.close()
