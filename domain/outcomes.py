"""What a command did, said in the domain's words: the command API turns it into HTTP.

A command returns an `Outcome`: its value (the aggregates the caller shows), the log position
the read models must reach to show it, and its `Effect` (which resource was created, changed,
removed or found). The command API maps an effect to a status code and a `Location` in one
table (`command_api/answers.py`); nothing here knows either.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar
from uuid import UUID

T = TypeVar("T")


class Change(StrEnum):
    """What happened to the resource."""

    CREATED = "created"
    CHANGED = "changed"
    REMOVED = "removed"
    FOUND = "found"  # it existed already and was returned; nothing was written


class Resource(StrEnum):
    """The kinds of resource a command acts on."""

    USER = "user"
    SESSION = "session"
    CHAT = "chat"
    MEMBERS = "members"  # the member list of chat `id`
    MEMBER = "member"  # one member (`id`) of a chat
    MESSAGE = "message"
    READ_MARKER = "read_marker"  # the caller's marker in chat `id`
    ATTACHMENT = "attachment"
    REACTION = "reaction"  # the caller's emoji on message `id`


@dataclass(frozen=True)
class Effect:
    """`change` happened to the resource `resource` numbered (or named) `id`."""

    change: Change
    resource: Resource
    id: int | UUID | None = None


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What a command produced, what it did, and the log position that shows it.

    `position` is 0 when nothing was written (a `Change.FOUND` effect).
    """

    value: T
    position: int
    effect: Effect
