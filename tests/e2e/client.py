"""A thin client for the public API, as a frontend would call it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


def new_key() -> str:
    return str(uuid.uuid4())


def unique_email(prefix: str = "user") -> str:
    return f"{prefix.title()}-{uuid.uuid4().hex[:12]}@example.com"


class Api:
    """Calls `/api/v1` over real HTTP; every write gets a fresh Idempotency-Key by default."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=f"{base_url}/api/v1", timeout=30)

    def post(self, path: str, json: Any = None, token: str | None = None,
             key: str | None = "new", **headers: str) -> httpx.Response:
        return self.http.post(path, json=json, headers=self._headers(token, key, headers))

    def get(self, path: str, token: str | None = None, params: dict[str, Any] | None = None,
            **headers: str) -> httpx.Response:
        return self.http.get(path, params=params, headers=self._headers(token, None, headers))

    def patch(self, path: str, json: Any = None, token: str | None = None,
              key: str | None = "new", **headers: str) -> httpx.Response:
        return self.http.patch(path, json=json, headers=self._headers(token, key, headers))

    def delete(self, path: str, token: str | None = None, key: str | None = "new",
               **headers: str) -> httpx.Response:
        return self.http.delete(path, headers=self._headers(token, key, headers))

    @staticmethod
    def _headers(token: str | None, key: str | None, extra: dict[str, str]) -> dict[str, str]:
        headers = {k.replace("_", "-"): v for k, v in extra.items()}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if key is not None:
            headers["Idempotency-Key"] = new_key() if key == "new" else key
        return headers

    def register(self, email: str | None = None, password: str = "securePassword123",
                 display_name: str = "John Doe", **extra: Any) -> dict[str, Any]:
        body = {"email": email or unique_email(), "password": password,
                "display_name": display_name, **extra}
        response = self.post("/auth/register", body)
        assert response.status_code == 201, response.text
        return response.json()


class User:
    """A registered user and the API as that user sees it."""

    def __init__(self, api: Api, name: str = "User") -> None:
        body = api.register(display_name=name)
        self.api = api
        self.id: int = body["user"]["id"]
        self.name = name
        self.token: str = body["tokens"]["access_token"]

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.api.get(path, token=self.token, params=params or None)

    def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.api.post(path, json, token=self.token, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.api.patch(path, json, token=self.token, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.api.delete(path, token=self.token, **kw)

    def group(self, *members: User, title: str = "Team") -> dict[str, Any]:
        response = self.post("/chats", {"title": title, "is_group": True,
                                        "member_ids": [m.id for m in members]})
        assert response.status_code == 201, response.text
        return response.json()

    def say(self, chat_id: int, text: str) -> dict[str, Any]:
        response = self.post("/messages", {"chat_id": chat_id, "type": "text", "content": text})
        assert response.status_code == 201, response.text
        return response.json()
