"""Rebuild benchmark: generate a realistic event log, then time `parley projections rebuild --all`.

    python bench/rebuild.py --events 220000 [--database-url URL] [--json bench/results/rebuild.json]

Without --database-url it starts its own embedded PostgreSQL in a temporary directory. The log
is written straight through the domain application (aggregates saved in large batches, numbers
allocated locally), not over HTTP: users, group and direct chats, text and voice messages,
edits, renames, members added and removed, deleted chats. The rebuild then replays it into
shadow tables and swaps them in, exactly as the CLI does. A rebuild swaps in at the live
position, so the live projector first projects the whole log (its rate is reported too), and
`verify` checks the result.

The live projector's rate is measured twice: catching up (batches of up to 1,000 events, as
after a restart) over all but the last 3,000 events, and following a live log (small batches:
1,000 batches of one event, then 200 of ten) over those.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from eventsourcing.domain import Aggregate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from domain.app import Parley
from domain.attachment import Attachment
from domain.chat import Chat, DirectChatIndex
from domain.message import SYSTEM, TEXT, VOICE, Message
from domain.session import Session
from domain.user import EmailIndex, User
from parley.embedded import embedded_postgres
from parley.progress import ProgressBar
from projectors.rebuild import Rebuild
from projectors.runner import BATCH_SIZE, LiveProjector, live_projections
from projectors.verify import verify
from shared.settings import Settings

SAVE_BATCH = 1000  # aggregates per `save`: one transaction, one round trip
SMALL_BATCHES = ((1, 1000), (10, 200))  # (events per batch, batches): a projector following


class LogWriter:
    """Drives aggregates the way the commands would and saves them in large batches."""

    def __init__(self, app: Parley, seed: int) -> None:
        self.app = app
        self.rng = random.Random(seed)
        self.numbers = {"user": 0, "chat": 0, "message": 0}
        self.pending: dict[uuid.UUID, Aggregate] = {}
        self.users: list[int] = []
        self.chats: list[Chat] = []
        self.pairs: set[tuple[int, int]] = set()
        self.recent_text: deque[Message] = deque(maxlen=5000)
        self.events = 0

    def _next(self, kind: str) -> int:
        self.numbers[kind] += 1
        return self.numbers[kind]

    def _touch(self, *aggregates: Aggregate, events: int = 1) -> None:
        for aggregate in aggregates:
            self.pending[aggregate.id] = aggregate
        self.events += events
        if len(self.pending) >= SAVE_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.app.save(*self.pending.values())
            self.pending.clear()

    def _note(self, chat: Chat, by: int, action: str) -> Message:
        return Message(number=self._next("message"), chat=chat.number, author=by, type=SYSTEM,
                       content=action.replace("_", " "), payload={"action": action})

    def register(self) -> None:
        number = self._next("user")
        email = f"user{number}@bench.example"
        user = User(number=number, email=email, password_hash="$argon2id$bench",
                    display_name=f"User {number}",
                    avatar_url=None if number % 3 else f"https://cdn.example/{number}.png")
        index = EmailIndex(normalized_email=email, user_number=number)
        session = Session(user_number=number, token_id=uuid.uuid4().hex)
        self.users.append(number)
        self._touch(user, index, session, events=3)

    def create_chat(self) -> None:
        creator = self.rng.choice(self.users)
        if self.rng.random() < 0.3:
            other = self.rng.choice(self.users)
            pair = (min(creator, other), max(creator, other))
            if other == creator or pair in self.pairs:
                return
            self.pairs.add(pair)
            chat = Chat(number=self._next("chat"), creator=creator, title=None, is_group=False,
                        members=[creator, other])
            extra: list[Aggregate] = [DirectChatIndex(creator, other, chat.number)]
        else:
            members = {creator, *self.rng.sample(self.users, min(len(self.users), 6))}
            chat = Chat(number=self._next("chat"), creator=creator,
                        title=f"Group {self.numbers['chat']}", is_group=True,
                        members=sorted(members))
            extra = []
        self.chats.append(chat)
        self._touch(chat, self._note(chat, creator, "chat_created"), *extra, events=2 + len(extra))

    def post(self) -> None:
        chat = self.rng.choice(self.chats)
        author = self.rng.choice(chat.members)
        if self.rng.random() < 0.04:
            attachment = Attachment(attachment_id=str(uuid.uuid4()), owner=author,
                                    key=f"voice/{uuid.uuid4().hex}.opus", filename="voice.opus",
                                    content_type="audio/opus")
            payload = {"attachment_id": attachment.attachment_id, "duration_ms": 4200,
                       "codec": "opus", "waveform": [self.rng.randrange(32) for _ in range(16)]}
            message = Message(number=self._next("message"), chat=chat.number, author=author,
                              type=VOICE, content=None, payload=payload)
            self._touch(attachment, message, events=2)
            return
        words = self.rng.randrange(2, 30)
        message = Message(number=self._next("message"), chat=chat.number, author=author,
                          type=TEXT, content=" ".join(["lorem"] * words), payload=None)
        self.recent_text.append(message)
        self._touch(message)

    def edit(self) -> None:
        if self.recent_text:
            message = self.rng.choice(self.recent_text)
            message.edit(message.author, (message.content or "") + " (edited)")
            self._touch(message)

    def change_members(self) -> None:
        chat = self.rng.choice(self.chats)
        if not chat.is_group:
            return
        if self.rng.random() < 0.6:
            added = chat.add_members(chat.creator, self.rng.sample(self.users, 2))
            if added:
                self._touch(chat, self._note(chat, chat.creator, "members_added"), events=2)
            return
        removable = [m for m in chat.members if m != chat.creator]
        if removable:
            chat.remove_member(chat.creator, self.rng.choice(removable))
            self._touch(chat, self._note(chat, chat.creator, "member_removed"), events=2)

    def rename(self) -> None:
        chat = self.rng.choice(self.chats)
        if chat.is_group:
            chat.rename(chat.creator, f"Renamed {self.rng.randrange(1000)}")
            self._touch(chat, self._note(chat, chat.creator, "chat_renamed"), events=2)

    def delete_chat(self) -> None:
        if len(self.chats) < 50:
            return
        self.flush()  # the deletion follows every earlier message of the chat in the log
        chat = self.chats.pop(self.rng.randrange(len(self.chats)))
        chat.delete(chat.creator)
        self.recent_text = deque((m for m in self.recent_text if m.chat != chat.number),
                                 maxlen=5000)
        self._touch(chat)

    def write(self, target: int) -> None:
        for _ in range(300):
            self.register()
        for _ in range(200):
            self.create_chat()
        actions = [self.post, self.edit, self.create_chat, self.change_members, self.rename,
                   self.register, self.delete_chat]
        weights = [80, 9, 1.5, 1.2, 0.5, 1.0, 0.05]
        while self.events < target:
            self.rng.choices(actions, weights)[0]()
        self.flush()
        with self.app.recorder.datastore.transaction(commit=True) as curs:  # type: ignore[attr-defined]
            for kind, last in self.numbers.items():
                curs.execute(f"SELECT setval('parley_{kind}_numbers', %s)", (max(last, 1),))


@dataclass
class Result:
    """What one benchmark run measured (rates in log events per second)."""

    events: int
    generate_seconds: float
    live_projector_seconds: float  # the live projector catching up (batches of up to 1,000)
    live_projector_events_per_second: float
    live_small_batches_events_per_second: dict[int, float]  # by events per batch
    live_small_batch_ms_p50: dict[int, float]  # the median batch's duration (less noisy)
    rebuild_seconds: float  # shadow build, chase and swap: the whole `rebuild --all`
    rebuild_events_per_second: float
    verified_equal: bool
    rows: dict[str, int]
    machine: str


def machine() -> str:
    cpu = "unknown cpu"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} x {cpu}"


def run(database_url: str, target: int, seed: int) -> Result:
    settings = Settings(database_url=database_url, db_pool_size=3)
    app = Parley(env=settings.eventsourcing_env())
    started = time.perf_counter()
    LogWriter(app, seed).write(target)
    generated = time.perf_counter() - started
    head = app.recorder.max_notification_id() or 0
    print(f"generated {head} events in {generated:.1f}s; the live projector follows...",
          file=sys.stderr)
    # A rebuild swaps in at the live projection's position: project the log live first.
    runner = LiveProjector(settings, app=app)
    small = sum(size * batches for size, batches in SMALL_BATCHES)
    started = time.perf_counter()
    while runner.position < head - small:
        runner.process_batch(min(BATCH_SIZE, head - small - runner.position))
    live = time.perf_counter() - started
    caught_up = runner.position
    small_rates, small_p50 = {}, {}
    for size, batches in SMALL_BATCHES:
        took = []
        for _ in range(batches):
            started = time.perf_counter()
            runner.process_batch(size)
            took.append(time.perf_counter() - started)
        small_rates[size] = round(size * batches / sum(took))
        small_p50[size] = round(statistics.median(took) * 1000, 2)
    assert runner.process_batch() is None
    settle(database_url)
    bar = ProgressBar("rebuild --all")
    started = time.perf_counter()
    Rebuild(settings, live_projections(), app=app, progress=bar).run()
    seconds = time.perf_counter() - started
    bar.finish()
    equal = all(v.equal for v in verify(settings, live_projections(), app=app))
    with psycopg.connect(database_url) as conn:
        rows = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
                for table in ("users", "chats", "chat_members", "messages", "attachments",
                              "membership_history")}
    app.close()
    return Result(events=head, generate_seconds=round(generated, 2),
                  live_projector_seconds=round(live, 2),
                  live_projector_events_per_second=round(caught_up / live),
                  live_small_batches_events_per_second=small_rates,
                  live_small_batch_ms_p50=small_p50,
                  rebuild_seconds=round(seconds, 2),
                  rebuild_events_per_second=round(head / seconds), verified_equal=equal,
                  rows=rows, machine=machine())


def settle(database_url: str) -> None:
    """Flush and vacuum what the live projector just wrote, so that a checkpoint or an
    autovacuum of those 220,000 events' worth of rows does not run during the measurement."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")


@contextmanager
def database(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp, \
            embedded_postgres(Path(tmp), database="bench") as embedded:
        yield embedded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=220_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--database-url", help="an empty database (default: embedded, temporary)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    with database(args.database_url) as url:
        result = run(url, args.events, args.seed)
    print(json.dumps(asdict(result), indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")


if __name__ == "__main__":
    main()
