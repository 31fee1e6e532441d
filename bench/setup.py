"""Prepare a benchmark: register users, put them all in one group chat, optionally seed messages.

    python bench/setup.py --base-url http://127.0.0.1:8000 --users 33 --messages 0

Writes `bench/results/setup.json` ({base_url, chat_id, users: [{id, token}]}) and one token
per line to `bench/results/tokens.txt` for the wrk scripts. Importable: `prepare(...)`.
"""

from __future__ import annotations

import argparse
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).resolve().parent / "results"
PASSWORD = "benchPassword123"


@dataclass
class BenchUser:
    """A registered user and its access token (valid 15 min by default)."""

    id: int
    token: str


@dataclass
class Setup:
    """What a load run needs: where the API is, one chat, and its members."""

    base_url: str
    chat_id: int
    users: list[BenchUser]

    @classmethod
    def load(cls, path: Path) -> Setup:
        raw = json.loads(path.read_text())
        return cls(raw["base_url"], raw["chat_id"], [BenchUser(**u) for u in raw["users"]])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))
        (path.parent / "tokens.txt").write_text("".join(u.token + "\n" for u in self.users))


def api(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=f"{base_url.rstrip('/')}/api/v1", timeout=60)


def write_headers(token: str | None = None) -> dict[str, str]:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def checked(response: httpx.Response, status: int) -> Any:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.method} {response.request.url}: "
                           f"{response.status_code} {response.text}")
    return response.json()


def register(client: httpx.Client, n: int) -> BenchUser:
    """Bench user `n`: registered on the first run, logged in on later ones (registrations per
    client address are limited, REGISTER_MAX_PER_ADDRESS, and runs repeat)."""
    body = {"email": f"bench-{n}@example.com", "password": PASSWORD,
            "display_name": f"Bench {n}"}
    response = client.post("/auth/register", json=body, headers=write_headers())
    if response.status_code == 400 and "already registered" in response.text:
        tokens = checked(client.post("/auth/login", json={"email": body["email"],
                                                          "password": PASSWORD},
                                     headers=write_headers()), 200)
        me = checked(client.get("/users/me",
                                headers={"Authorization": f"Bearer {tokens['access_token']}"}),
                     200)
        return BenchUser(me["id"], tokens["access_token"])
    created = checked(response, 201)
    return BenchUser(created["user"]["id"], created["tokens"]["access_token"])


def prepare(base_url: str, users: int = 33, messages: int = 0, parallel: int = 8) -> Setup:
    """Register `users`, create one group chat of all of them, post `messages` round-robin."""
    with api(base_url) as client, ThreadPoolExecutor(parallel) as pool:
        members = list(pool.map(lambda n: register(client, n), range(users)))
        owner = members[0]
        chat = checked(client.post("/chats", headers=write_headers(owner.token), json={
            "title": "bench", "is_group": True, "member_ids": [u.id for u in members[1:]]}), 201)

        def say(n: int) -> None:
            author = members[n % len(members)]
            body = {"chat_id": chat["id"], "type": "text", "content": f"seed message {n}"}
            checked(client.post("/messages", json=body, headers=write_headers(author.token)), 201)

        list(pool.map(say, range(messages)))
    return Setup(base_url, chat["id"], members)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--users", type=int, default=33)
    parser.add_argument("--messages", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "setup.json")
    args = parser.parse_args()
    setup = prepare(args.base_url, args.users, args.messages)
    setup.save(args.out)
    print(json.dumps({"chat_id": setup.chat_id, "users": len(setup.users), "out": str(args.out)}))


if __name__ == "__main__":
    main()
