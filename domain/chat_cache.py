"""Chats kept in memory for decisions that read a chat and leave it unchanged (posting)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from uuid import UUID

from domain.chat import Chat

CHAT_CACHE_MEMBERS = 1_000_000  # bound of ChatCache: members (plus one per chat) kept in all


class ChatCache:
    """Chats as last read from the store, for decisions that do not change them.

    Posting a message reads its chat (is the author a member?) and changes nothing in it;
    loading the chat's whole history for every post made a post cost O(chat events). Shared
    between threads and never mutated: a fresh load replaces an entry, it is not updated.
    The least recently used chats go first once they hold more than `size` members in all.
    """

    def __init__(self, size: int = CHAT_CACHE_MEMBERS) -> None:
        self._chats: OrderedDict[UUID, Chat] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size
        self.weight = 0

    @staticmethod
    def _weight(chat: Chat) -> int:
        return 1 + len(chat.members)

    def get(self, chat_id: UUID) -> Chat | None:
        with self._lock:
            chat = self._chats.get(chat_id)
            if chat is not None:
                self._chats.move_to_end(chat_id)
            return chat

    def put(self, chat: Chat) -> None:
        with self._lock:
            self._pop(chat.id)
            self._chats[chat.id] = chat
            self.weight += self._weight(chat)
            while self.weight > self.size and self._chats:
                self._pop(next(iter(self._chats)))

    def forget(self, ids: Iterable[UUID]) -> None:
        with self._lock:
            for chat_id in ids:
                self._pop(chat_id)

    def _pop(self, chat_id: UUID) -> None:
        chat = self._chats.pop(chat_id, None)
        if chat is not None:
            self.weight -= self._weight(chat)
