"""Prepare the search benchmark (bench/search.sh): a log of 200,000+ messages to search.

    python bench/search_setup.py --base-url http://127.0.0.1:8000 --data-dir .parley \
        --messages 200000

Users and chats are made over HTTP (so the searchers have tokens); the messages go straight into
the event store through the domain application (Message aggregates saved 1,000 per
transaction, numbers reserved from the server's own sequence), which takes a minute where
HTTP would take an hour; then the running projector catches up (backfills `message_search` and
every other read model) and this waits for it through `X-Min-Position`.

Texts are drawn from a fixed vocabulary of Latin and Cyrillic words with a Zipf-like spread
(a few words in a large share of the messages, most words rare), 3 to 25 words each. Writes
bench/results/search.json, search-tokens.txt (the searchers' tokens) and search-queries.txt
(one query string per line, URL-encoded: common, rare, prefixes, two words, no hit).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from setup import RESULTS, api, checked, register, write_headers

from domain.app import Parley
from domain.message import TEXT, Message
from shared.settings import Settings

SAVE_BATCH = 250
LATIN = ("hello world team meeting release deploy server client bug fix review merge branch "
         "design search index query database cache queue event stream socket token login "
         "coffee lunch weekend holiday travel ticket budget report invoice customer partner "
         "garden music movie football weather morning evening tomorrow yesterday project "
         "roadmap sprint backlog incident outage rollback migration schema benchmark").split()
CYRILLIC = ("привет мир команда встреча релиз сервер клиент ошибка исправление обзор поиск "
            "индекс запрос база кэш очередь событие поток токен вход кофе обед выходные отпуск "
            "поездка билет бюджет отчёт счёт клиенты партнёр сад музыка фильм футбол погода "
            "утро вечер завтра вчера проект спринт инцидент откат миграция схема").split()
VOCABULARY = LATIN + CYRILLIC
QUERIES = ["hello", "привет", "hel", "при", "deploy server", "отчёт бюджет", "bench", "rollb",
           "инцидент откат", "weather tomorrow", "zzzz", "m", "поиск"]


def database_url(data_dir: Path) -> str:
    """The URL of `parley up --data-dir DATA_DIR`'s embedded PostgreSQL (postmaster.pid: the
    port on line 4, the socket directory on line 5)."""
    lines = (data_dir / "postgres" / "postmaster.pid").read_text().splitlines()
    host = urllib.parse.quote(lines[4].strip(), safe="")
    return f"postgresql://postgres@/parley?host={host}&port={lines[3].strip()}"


def texts(rng: random.Random, n: int) -> list[str]:
    weights = [1 / (rank + 1) for rank in range(len(VOCABULARY))]
    shuffled = rng.sample(VOCABULARY, len(VOCABULARY))
    out = []
    for _ in range(n):
        words = rng.choices(shuffled, weights, k=rng.randrange(3, 26))
        out.append(" ".join(w.capitalize() if rng.random() < 0.2 else w for w in words))
    return out


def write_messages(settings: Settings, chats: dict[int, list[int]], count: int,
                   seed: int) -> int:
    """Save `count` text messages into the chats' logs; the last log position."""
    rng = random.Random(seed)
    app = Parley(env=settings.eventsourcing_env())
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            numbers = [row[0] for row in conn.execute(
                "SELECT nextval('parley_message_numbers') FROM generate_series(1, %s)",
                (count,))]
        chat_ids = list(chats)
        pending: list[Message] = []
        for number, text in zip(numbers, texts(rng, count), strict=True):
            chat = rng.choice(chat_ids)
            pending.append(Message(number=number, chat=chat, author=rng.choice(chats[chat]),
                                   type=TEXT, content=text, payload=None))
            if len(pending) == SAVE_BATCH:
                app.save(*pending)
                pending.clear()
                if number % 20_000 < SAVE_BATCH:
                    print(f"  ... message {number}", file=sys.stderr, flush=True)
        if pending:
            app.save(*pending)
        return int(app.recorder.max_notification_id() or 0)
    finally:
        app.close()


def prepare(base_url: str, data_dir: Path, messages: int, users: int, chats: int,
            per_chat: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    settings = Settings(database_url=database_url(data_dir), db_pool_size=2)
    with api(base_url) as client:
        people = [register(client, 3000 + n) for n in range(users)]
        owner = people[0]
        members: dict[int, list[int]] = {}
        for n in range(chats):
            chosen = [p.id for p in rng.sample(people[1:], per_chat - 1)]
            chat = checked(client.post("/chats", headers=write_headers(owner.token), json={
                "title": f"search bench {n}", "is_group": True, "member_ids": chosen}), 201)
            members[int(chat["id"])] = [owner.id, *chosen]
        started = time.perf_counter()
        last = write_messages(settings, members, messages, seed)
        written = time.perf_counter() - started
        print(f"{messages} messages written in {written:.1f}s (log position {last});"
              " waiting for the projector...", file=sys.stderr)
        started = time.perf_counter()
        while True:  # the read models reach the log's end: X-Min-Position answers promptly
            response = client.get("/chats", headers={"Authorization": f"Bearer {owner.token}",
                                                      "X-Min-Position": str(last)},
                                  timeout=httpx.Timeout(60))
            with psycopg.connect(settings.database_url) as conn:
                row = conn.execute("SELECT notification_id FROM projection_tracking"
                                   " WHERE application_name = 'search'").fetchone()
            if response.status_code == 200 and row and row[0] is not None and row[0] >= last:
                break
            time.sleep(1)
        projected = time.perf_counter() - started
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE message_search")
            conn.execute("VACUUM ANALYZE messages")
            rows = conn.execute("SELECT count(*) FROM message_search").fetchone()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "search-tokens.txt").write_text("".join(p.token + "\n" for p in people[1:]))
    (RESULTS / "search-queries.txt").write_text(
        "".join(urllib.parse.quote(q) + "\n" for q in QUERIES))
    summary = {"base_url": base_url, "messages": messages, "chats": chats, "users": users,
               "per_chat": per_chat, "search_rows": rows[0] if rows else None,
               "write_seconds": round(written, 1), "projector_seconds": round(projected, 1)}
    (RESULTS / "search.json").write_text(json.dumps(summary, indent=2))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--data-dir", type=Path, default=Path(".parley"))
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--per-chat", type=int, default=8)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    print(json.dumps(prepare(args.base_url, args.data_dir, args.messages, args.users,
                             args.chats, args.per_chat, args.seed)))


if __name__ == "__main__":
    main()
