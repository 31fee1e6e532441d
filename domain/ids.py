"""Deterministic aggregate ids: integer public ids and natural keys map to uuid5 ids."""

from __future__ import annotations

from uuid import UUID, uuid5

NAMESPACE = UUID("6f1f7a52-2f0e-4a59-9a0b-5f3d0c4c9e11")


def user_id(number: int) -> UUID:
    return uuid5(NAMESPACE, f"/users/{number}")


def email_index_id(normalized_email: str) -> UUID:
    return uuid5(NAMESPACE, f"/emails/{normalized_email}")


def idempotency_id(scope: str, key: str) -> UUID:
    return uuid5(NAMESPACE, f"/idempotency/{scope}/{key}")


def normalize_email(email: str) -> str:
    """Emails are unique case-insensitively; the stored display form keeps the user's casing."""
    return email.strip().lower()


def chat_id(number: int) -> UUID:
    return uuid5(NAMESPACE, f"/chats/{number}")


def direct_chat_index_id(user_a: int, user_b: int) -> UUID:
    low, high = sorted((user_a, user_b))
    return uuid5(NAMESPACE, f"/direct-chats/{low}/{high}")


def message_id(number: int) -> UUID:
    return uuid5(NAMESPACE, f"/messages/{number}")


def read_marker_id(chat: int, user: int) -> UUID:
    return uuid5(NAMESPACE, f"/chats/{chat}/read/{user}")


def reaction_id(message: int, user: int, emoji: str) -> UUID:
    return uuid5(NAMESPACE, f"/messages/{message}/reactions/{user}/{emoji}")
