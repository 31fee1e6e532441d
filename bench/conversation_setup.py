"""Prepare the conversation-state benchmark (bench/conversation.sh).

    python bench/conversation_setup.py --base-url http://127.0.0.1:8000 --chats 100

- A reader in `--chats` group chats, each with `--per-chat` messages by others, some read: the
  `GET /chats` load (unread counts, markers and last messages on every chat).
- `--readers` users in one more chat with `--marks` messages: the `PUT /chats/{id}/read`
  load, each request moving a reader's marker forward.

Writes bench/results/conversation.json, reader-token.txt, reader-tokens.txt, mark-ids.txt.
Bench users are registered on the first run and logged in on later ones.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from setup import RESULTS, api, checked, register, write_headers


def prepare(base_url: str, chats: int, per_chat: int, readers: int, marks: int,
            parallel: int = 8) -> dict[str, Any]:
    with api(base_url) as client, ThreadPoolExecutor(parallel) as pool:
        users = list(pool.map(lambda n: register(client, 1000 + n), range(3 + readers)))
        reader, owner, writer, markers = users[0], users[1], users[2], users[3:]

        def create(title: str, members: list[int]) -> int:
            return int(checked(client.post("/chats", headers=write_headers(owner.token), json={
                "title": title, "is_group": True, "member_ids": members}), 201)["id"])

        def say(chat: int, n: int) -> int:
            body = {"chat_id": chat, "type": "text", "content": f"bench message {n}"}
            return int(checked(client.post("/messages", json=body,
                                           headers=write_headers(writer.token)), 201)["id"])

        listed = list(pool.map(lambda n: create(f"list {n}", [reader.id, writer.id]),
                               range(chats)))
        for chat in listed:  # in order, so every chat has the same shape
            ids = list(pool.map(lambda n, chat=chat: say(chat, n), range(per_chat)))
            if chat % 2:  # half the chats are partly read
                client.put(f"/chats/{chat}/read", json={"message_id": sorted(ids)[per_chat // 2]},
                           headers={"Authorization": f"Bearer {reader.token}"})
        marked = create("marks", [writer.id, *(u.id for u in markers)])
        ids = sorted(pool.map(lambda n: say(marked, n), range(marks)))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "reader-token.txt").write_text(reader.token + "\n")
    (RESULTS / "reader-tokens.txt").write_text("".join(u.token + "\n" for u in markers))
    (RESULTS / "mark-ids.txt").write_text("".join(f"{i}\n" for i in ids))
    summary = {"base_url": base_url, "reader": reader.id, "chats": len(listed),
               "per_chat": per_chat, "mark_chat": marked, "readers": len(markers),
               "marks": len(ids)}
    (RESULTS / "conversation.json").write_text(json.dumps(summary, indent=2))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--per-chat", type=int, default=10)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--marks", type=int, default=4000)
    args = parser.parse_args()
    print(json.dumps(prepare(args.base_url, args.chats, args.per_chat, args.readers,
                             args.marks)))


if __name__ == "__main__":
    main()
