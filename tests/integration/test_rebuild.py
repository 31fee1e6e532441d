"""Rebuild, verify, status and backfill on real PostgreSQL: read models are the log's function."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from psycopg import Cursor

import projectors.backfill
from domain.app import Parley
from domain.message import Message
from domain.session import Session
from projectors.backfill import Backfill
from projectors.base import Events
from projectors.main import backfill
from projectors.messages import MessagesProjection
from projectors.payloads import public_events
from projectors.rebuild import Rebuild
from projectors.runner import LiveProjector, LogListener, live_projections
from projectors.status import status
from projectors.verify import verify
from shared.settings import Settings
from tests.integration.projection import drain, query, verified
from tests.integration.workload import Workload

ROOT = Path(__file__).resolve().parents[2]


def live_tables(settings: Settings, app: Parley) -> list[str]:
    """Every table of every live projection: the tables `verify` compares."""
    verdicts = verified(settings, live_projections(), app)
    return [t.table for v in verdicts for t in v.tables]


def snapshot(settings: Settings, tables: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    return {t: query(settings, f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables}


def tracking(settings: Settings) -> dict[str, int]:
    return dict(query(settings, "SELECT application_name, notification_id"  # type: ignore[arg-type]
                                " FROM projection_tracking"))


def schemas(settings: Settings) -> set[str]:
    return {r[0] for r in query(settings, "SELECT nspname FROM pg_namespace"
                                          " WHERE strpos(nspname, '__') > 0")}


def test_verify_after_a_randomized_workload_and_it_sees_a_tampered_row(
        app: Parley, settings: Settings) -> None:
    workload = Workload(app, seed=11)
    workload.setup()
    workload.run(120)
    workload.delete_a_chat()
    workload.run(40)  # edits of a deleted chat's messages are refused, the rest goes on
    workload.read_all_then_delete(4)  # deletions of messages members have read: counts hold
    drain(LiveProjector(settings, app=app), limit=7)

    for batch_size in (5000, 3):  # one batch (in-memory paths) and many (older-row paths)
        verdicts = verified(settings, live_projections(), app, batch_size=batch_size)
        assert all(v.position == workload.last_position for v in verdicts)
    assert query(settings, "SELECT count(*) FROM chats WHERE deleted_at IS NOT NULL") == [(1,)]
    # the log holds replies, deleted messages and read markers, not just the seed's events
    [(replies, markers)] = query(settings, "SELECT (SELECT count(*) FROM messages WHERE"
                                           " reply_to_id IS NOT NULL), (SELECT count(*) FROM"
                                           " parley_events WHERE topic LIKE"
                                           " 'domain.read_marker:%%')")
    assert replies > 0 and markers > 0 and workload.deleted_messages > 0
    # and reactions standing, taken back, and added again
    [(standing, removed, again)] = query(settings, "SELECT (SELECT count(*) FROM reactions),"
                                         " (SELECT count(*) FROM parley_events WHERE topic ="
                                         " 'domain.reaction:Reaction.Removed'), (SELECT count(*)"
                                         " FROM parley_events WHERE topic ="
                                         " 'domain.reaction:Reaction.Readded')")
    assert standing > 0 and removed > 0 and again > 0
    # every unread count kept set-wise equals a count over the messages themselves
    assert query(settings, """
        SELECT r.chat_id, r.user_id, n.countable - r.base, (SELECT count(*) FROM messages m
            WHERE m.chat_id = r.chat_id AND m.id > coalesce(r.last_read_message_id, 0)
            AND m.author_id <> r.user_id AND m.type <> 'system')
        FROM chat_reads r JOIN chat_counts n USING (chat_id)
        WHERE n.countable - r.base <> (SELECT count(*) FROM messages m
            WHERE m.chat_id = r.chat_id AND m.id > coalesce(r.last_read_message_id, 0)
            AND m.author_id <> r.user_id AND m.type <> 'system')""") == []

    query(settings, "UPDATE messages SET content = 'tampered' WHERE id = (SELECT min(id)"
                    " FROM messages WHERE type = 'text')")
    messages = verify(settings, [p for p in live_projections() if p.name == "messages"],
                      app=app)[0]
    assert not messages.equal
    [table] = messages.tables
    assert len(table.only_live) == 1 and "tampered" in table.only_live[0]
    assert len(table.only_rebuilt) == 1 and "tampered" not in table.only_rebuilt[0]
    assert schemas(settings) == set()  # verify never leaves its shadow behind


def test_rebuild_while_writes_continue_loses_nothing(app: Parley, settings: Settings) -> None:
    workload = Workload(app, seed=12)
    workload.setup()
    workload.run(80)
    runner = LiveProjector(settings, app=app)
    drain(runner)
    stop, failures = threading.Event(), []
    writes = threading.Semaphore(0)

    def background(work: Callable[[], None]) -> threading.Thread:
        def loop() -> None:
            try:
                while not stop.is_set():
                    work()
            except Exception as exc:  # reported by the main thread
                failures.append(exc)
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread

    def write() -> None:
        workload.step()
        writes.release()

    listener = LogListener(settings, runner.recorder.channel_name)

    def project() -> None:
        if runner.process_batch(limit=20) is None:
            listener.wait(0.05)

    reader = psycopg.connect(settings.database_url, autocommit=True)

    def read() -> None:  # a query API: must never fail, before, during or after the swap
        reader.execute("SELECT count(*) FROM messages m JOIN chat_members c"
                       " ON c.chat_id = m.chat_id WHERE m.id > %s", (0,)).fetchone()

    threads = [background(write), background(project), background(read)]

    def progress(done: int, total: int) -> None:
        for _ in range(3):  # the log keeps growing while the shadow is built
            assert writes.acquire(timeout=30)

    started_at = app.recorder.max_notification_id() or 0
    swapped = Rebuild(settings, live_projections(), batch_size=25, progress=progress).run()
    for _ in range(10):  # and after the swap
        assert writes.acquire(timeout=30)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    listener.close()
    reader.close()
    assert failures == []
    drain(runner)

    head = app.recorder.max_notification_id()
    assert min(swapped.values()) > started_at  # it chased the live projection
    assert workload.last_position <= head
    assert all(tracking(settings)[p.name] == head for p in live_projections())
    posted = {r[0] for r in query(settings, "SELECT id FROM messages")}
    assert {n for n, chat in workload.messages.items() if chat not in workload.deleted} <= posted
    assert schemas(settings) == set()
    verified(settings, live_projections(), app)


def test_kill_9_mid_rebuild_leaves_live_tables_serving_and_a_rerun_completes(
        app: Parley, settings: Settings) -> None:
    workload = Workload(app, seed=13)
    workload.setup(users=3)
    chat = workload.chats[0]
    author = app._chat(chat).members[0]
    for _ in range(8):  # 8,000 messages, saved 1,000 per transaction
        app.save(*[Message(number=app._next_number("message"), chat=chat, author=author,
                           type="text", content=f"bulk {i}", payload=None)
                   for i in range(1000)])
    drain(LiveProjector(settings, app=app))
    head = app.recorder.max_notification_id()
    tables = live_tables(settings, app)
    assert {"membership_history", "ended_sessions", "messages"} <= set(tables)
    before = snapshot(settings, tables)
    command = [sys.executable, "-m", "parley.cli", "projections", "rebuild", "--all",
               "--batch-size", "20"]
    env = {**os.environ, "DATABASE_URL": settings.database_url}

    killed = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            while (conn.execute("SELECT coalesce(max(notification_id), 0)"
                                " FROM projection_tracking WHERE application_name ="
                                " 'messages__rebuild'").fetchone() or (0,))[0] < head // 4:
                assert killed.poll() is None, killed.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.01)  # polling the position, not waiting for time to pass
    finally:
        killed.kill()  # SIGKILL: no cleanup of any kind
        killed.communicate()
    partial = tracking(settings)["messages__rebuild"]
    assert 0 < partial < head
    assert snapshot(settings, tables) == before  # untouched and serving
    assert "rebuild__messages" in schemas(settings)

    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "swapped in" in rerun.stderr
    first = re.search(r"([\d,]+)/([\d,]+) events", rerun.stderr)
    assert first and int(first.group(2).replace(",", "")) <= head - partial  # it resumed
    assert schemas(settings) == set() and "messages__rebuild" not in tracking(settings)
    assert snapshot(settings, tables) == before  # the same log gives the same rows
    verified(settings, live_projections(), app)


def store_as_version_1(app: Parley, event: Any, added_in_version_2: str) -> int:
    """Append the event as version 1 of its class stored it: without the field version 2
    added and without `class_version`; returns its log position."""
    state = {k: v for k, v in vars(event).items()
             if k not in ("originator_id", "originator_version", added_in_version_2)}
    old = StoredEvent(originator_id=event.originator_id,
                      originator_version=event.originator_version, topic=get_topic(type(event)),
                      state=app.mapper.transcoder.encode(state))
    assert added_in_version_2.encode() not in old.state and b"class_version" not in old.state
    [recording] = app.recorder.insert_events([old])
    return int(recording)


def test_message_events_stored_before_reply_to_still_replay(app: Parley,
                                                            settings: Settings) -> None:
    workload = Workload(app, seed=14)
    workload.setup(users=2)
    chat = workload.chats[0]
    author = app._chat(chat).members[0]
    # A Message.Posted as version 1 stored it: no `reply_to`, no `class_version`.
    new = Message(number=app._next_number("message"), chat=chat, author=author, type="text",
                  content="written before replies existed", payload=None)
    recording = store_as_version_1(app, new.collect_events()[0], "reply_to")

    [stored] = app.recorder.select_notifications(start=recording, limit=1)
    upcast = app.mapper.to_domain_event(stored)
    assert isinstance(upcast, Message.Posted) and upcast.reply_to is None
    loaded = app._load(new.id, Message, "")
    assert loaded.reply_to is None and loaded.content == "written before replies existed"
    edited = app.edit_message(workload.claim(author), author, new.number, "edited later")
    assert edited.value.version == 2  # the new event follows the old one
    workload.post()  # and a new message is stored as version 2
    [latest] = app.recorder.select_notifications(start=edited.position, limit=1,
                                                 topics=[get_topic(Message.Posted)],
                                                 inclusive_of_start=False)
    assert b'"class_version":2' in latest.state and b'"reply_to":null' in latest.state

    drain(LiveProjector(settings, app=app))
    assert query(settings, "SELECT content, edited_at IS NOT NULL FROM messages WHERE id = %s",
                 (new.number,)) == [("edited later", True)]
    verified(settings, live_projections(), app)


class MessageCounts:
    """A read model added after the fact: messages per chat."""

    name: ClassVar[str] = "message_counts"
    ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS message_counts (chat_id bigint PRIMARY KEY,"
        " messages bigint NOT NULL, position bigint NOT NULL)",)
    event_types: ClassVar[tuple[type, ...]] = (Message.Posted,)

    def apply(self, events: Events, curs: Cursor[Any]) -> None:
        counts: Counter[int] = Counter()
        last: dict[int, int] = {}  # the position of each chat's last post
        for position, event in events:
            if isinstance(event, Message.Posted):
                counts[event.chat] += 1
                last[event.chat] = position
        curs.executemany("INSERT INTO message_counts VALUES (%s, %s, %s) ON CONFLICT (chat_id)"
                         " DO UPDATE SET messages = message_counts.messages + EXCLUDED.messages,"
                         " position = EXCLUDED.position",
                         [(chat, n, last[chat]) for chat, n in counts.items()])


def test_a_new_projection_backfills_without_holding_the_live_ones_back(
        app: Parley, settings: Settings) -> None:
    workload = Workload(app, seed=15)
    workload.setup()
    workload.run(60)
    drain(LiveProjector(settings, app=app))
    head = app.recorder.max_notification_id()
    assert head is not None

    runner = LiveProjector(settings, [*live_projections(), MessageCounts()], app=app)
    [late] = runner.lagging
    assert late.name == "message_counts" and runner.positions["message_counts"] == 0
    assert runner.position == head  # the live projections go on from where they are
    backfill = Backfill(runner, late)
    backfill.step(head // 2)  # a first batch, its tracking row in the same transaction
    assert tracking(settings)["message_counts"] == head // 2

    workload.post()  # written during the backfill: the live loop projects it at once
    assert runner.process_batch() is not None
    positions = tracking(settings)
    assert positions["readmodels"] == workload.last_position
    assert all(positions[p.name] == workload.last_position for p in live_projections())
    assert positions["message_counts"] == head // 2

    assert backfill.run() is True  # close enough: the live loop takes over
    assert late in runner.live and runner.lagging == []
    assert runner.position == head // 2
    drain(runner, limit=10)
    positions = tracking(settings)
    assert positions["readmodels"] == positions["message_counts"] == workload.last_position
    [(counted,)] = query(settings, "SELECT sum(messages) FROM message_counts")
    assert counted == query(settings, "SELECT count(*) FROM parley_events WHERE topic = %s",
                            (get_topic(Message.Posted),))[0][0]
    verified(settings, [MessageCounts()], app)


class FlakyCounts(MessageCounts):
    """MessageCounts whose first attempt fails, like a bug fixed by a retry (a lost lock)."""

    attempts = 0

    def apply(self, events: Events, curs: Cursor[Any]) -> None:
        FlakyCounts.attempts += 1
        if FlakyCounts.attempts == 1:
            raise RuntimeError("flaky")
        super().apply(events, curs)


def test_a_failing_backfill_is_retried_and_never_stops_the_live_loop(
        app: Parley, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(projectors.backfill, "JOIN_WITHIN", 10)  # so this small log needs steps
    workload = Workload(app, seed=17)
    workload.setup()
    workload.run(40)
    drain(LiveProjector(settings, app=app))
    runner = LiveProjector(settings, [*live_projections(), FlakyCounts()], app=app)
    assert [p.name for p in runner.lagging] == ["message_counts"]

    async def scenario() -> None:
        backfilling = asyncio.create_task(backfill(runner, asyncio.Event()))
        while not backfilling.done():
            workload.post()  # the live loop keeps up meanwhile
            assert await asyncio.to_thread(runner.process_batch) is not None
            assert tracking(settings)["readmodels"] == workload.last_position
            await asyncio.sleep(0.05)
        await backfilling

    asyncio.run(asyncio.wait_for(scenario(), 60))
    assert runner.lagging == [] and FlakyCounts.attempts > 1
    assert query(settings, "SELECT error FROM projection_errors WHERE name = 'message_counts'"
                 ) == [("RuntimeError: flaky",)]
    drain(runner)
    verified(settings, [MessageCounts()], app)


class FailingMessages(MessagesProjection):
    """The live messages projection with a bug: it cannot apply edits."""

    def apply(self, events: Events, curs: Cursor[Any]) -> None:
        if any(isinstance(event, Message.Edited) for _, event in events):
            raise RuntimeError("cannot apply edits")
        super().apply(events, curs)


def test_status_reports_positions_lag_and_the_last_error(app: Parley,
                                                         settings: Settings) -> None:
    workload = Workload(app, seed=16)
    workload.setup()
    workload.run(30)
    chat = workload.chats[0]
    author = app._chat(chat).members[0]
    posted = app.post_message(workload.claim(author), author, chat, "text", "typo", None)
    app.edit_message(workload.claim(author), author, posted.value.number, "fixed")
    others = [p for p in live_projections() if p.name != "messages"]
    drain(LiveProjector(settings, others, app=app))
    failing = LiveProjector(settings, [FailingMessages()], app=app)
    with pytest.raises(RuntimeError, match="cannot apply edits"):
        drain(failing)
    head = app.recorder.max_notification_id()

    report = status(app, live_projections())
    assert report.head == head
    lags = {lag.name: lag for lag in report.projections}
    assert lags["users"].position == head and lags["users"].events == 0
    stuck = lags["messages"]
    assert 0 < stuck.events == head - stuck.position  # no gaps in this log
    assert stuck.seconds is not None and 0 <= stuck.seconds < 600
    assert stuck.error is not None and stuck.error_is_current
    assert stuck.error.position > stuck.position and "cannot apply edits" in stuck.error.error

    drain(LiveProjector(settings, app=app))  # the fixed code is deployed
    recovered = {lag.name: lag for lag in status(app, live_projections()).projections}
    assert recovered["messages"].events == 0 and recovered["messages"].seconds is None
    assert recovered["messages"].error is not None
    assert not recovered["messages"].error_is_current


def test_session_revocations_stored_before_user_number_still_replay(app: Parley,
                                                                    settings: Settings) -> None:
    workload = Workload(app, seed=15)
    workload.setup(users=2)
    user = workload.users[0]
    session = app.start_session(workload.claim(user), user, "token").value
    # A Session.Revoked as version 1 stored it: no `user_number`, no `class_version`.
    session.revoke("logout")
    recording = store_as_version_1(app, session.collect_events()[0], "user_number")

    [stored] = app.recorder.select_notifications(start=recording, limit=1)
    upcast = app.mapper.to_domain_event(stored)
    assert isinstance(upcast, Session.Revoked) and upcast.user_number is None
    assert public_events(upcast) == []  # nobody to notify: its tokens expired long ago
    loaded = app.get_session(session.id)
    assert loaded is not None and loaded.revoked

    drain(LiveProjector(settings, app=app))
    assert query(settings, "SELECT user_id, reason FROM ended_sessions WHERE session_id = %s",
                 (session.id,)) == [(None, "logout")]
    verified(settings, live_projections(), app)


def test_a_rebuild_keeps_the_grants_made_on_the_live_tables(app: Parley,
                                                           settings: Settings) -> None:
    workload = Workload(app, seed=18)
    workload.setup()
    workload.run(20)
    drain(LiveProjector(settings, app=app))
    reader = f"reader_{uuid.uuid4().hex[:8]}"  # roles are cluster-wide: a name of its own
    query(settings, f'CREATE ROLE "{reader}" NOLOGIN')
    try:
        query(settings, f'GRANT SELECT ON messages, chats TO "{reader}"')
        query(settings, f'GRANT UPDATE ON chats TO "{reader}" WITH GRANT OPTION')
        query(settings, "GRANT SELECT ON users TO PUBLIC")
        Rebuild(settings, live_projections(), app=app).run()
        granted = query(settings, "SELECT table_name, privilege_type, is_grantable"
                                  " FROM information_schema.role_table_grants"
                                  " WHERE grantee = %s ORDER BY 1, 2", (reader,))
        assert granted == [("chats", "SELECT", "NO"), ("chats", "UPDATE", "YES"),
                           ("messages", "SELECT", "NO")]
        assert query(settings, "SELECT has_table_privilege('public', 'users', 'SELECT')") \
            == [(True,)]
        assert query(settings, "SELECT has_table_privilege('public', 'messages', 'SELECT')") \
            == [(False,)]
    finally:
        query(settings, f'DROP OWNED BY "{reader}"')
        query(settings, f'DROP ROLE "{reader}"')
