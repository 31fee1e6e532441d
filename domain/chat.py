"""Chats: the Chat aggregate (membership, title, deletion) and the direct-chat pair index."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import ids
from domain.errors import ForbiddenError, InvalidCommandError, NotFoundError


def title_seen_by(viewer: int, title: str | None, is_group: bool, members: Sequence[int],
                  name_of: Callable[[int], str | None]) -> str | None:
    """A chat's title as `viewer` sees it: a direct chat without one shows the other member's
    name (`name_of` a user number: their display name). REST answers (command and query API)
    and live `chat.created` frames (gateway/titles.py) all apply it."""
    if is_group or title is not None:
        return title
    other = next((m for m in members if m != viewer), viewer)
    return name_of(other)


class Chat(Aggregate):
    """A direct or group chat; its members are checked on every write that touches it."""

    class Created(Aggregate.Created):
        number: int
        creator: int
        title: str | None
        is_group: bool
        members: list[int]

    # Later events repeat the chat's number: projections and NATS subjects need it.
    class Renamed(Aggregate.Event):
        chat: int
        title: str
        by: int

    class MembersAdded(Aggregate.Event):
        chat: int
        user_ids: list[int]
        by: int

    class MemberRemoved(Aggregate.Event):
        chat: int
        user_id: int
        by: int

    class Deleted(Aggregate.Event):
        chat: int
        by: int

    @staticmethod
    def create_id(number: int) -> UUID:
        return ids.chat_id(number)

    @event(Created)
    def __init__(self, number: int, creator: int, title: str | None, is_group: bool,
                 members: list[int]) -> None:
        self.number = number
        self.creator = creator
        self.title = title
        self.is_group = is_group
        self.members = list(members)
        self.deleted = False

    def is_visible_to(self, user: int) -> bool:
        return not self.deleted and user in self.members

    def check_visible_to(self, user: int) -> None:
        """404 for a deleted chat, 403 for a non-member (as `GET /chats/{id}` answers)."""
        if self.deleted:
            raise NotFoundError("Chat not found")
        if user not in self.members:
            raise ForbiddenError("You are not a member of this chat")

    def _check_group_creator(self, by: int, action: str) -> None:
        self.check_visible_to(by)
        if not self.is_group:
            raise InvalidCommandError(f"Cannot {action} a direct chat")
        if by != self.creator:
            raise ForbiddenError(f"Only the chat's creator can {action} it")

    def rename(self, by: int, title: str) -> None:
        self._check_group_creator(by, "rename")
        self._renamed(chat=self.number, title=title, by=by)

    @event(Renamed)
    def _renamed(self, chat: int, title: str, by: int) -> None:
        self.title = title

    def add_members(self, by: int, user_ids: list[int]) -> list[int]:
        """Add the users who are not members yet; returns them (maybe none)."""
        self._check_group_creator(by, "add members to")
        new = [u for u in dict.fromkeys(user_ids) if u not in self.members]
        if new:
            self._members_added(chat=self.number, user_ids=new, by=by)
        return new

    @event(MembersAdded)
    def _members_added(self, chat: int, user_ids: list[int], by: int) -> None:
        self.members.extend(user_ids)

    def remove_member(self, by: int, user_id: int) -> None:
        """The creator removes anyone else; a member removes itself (leaves)."""
        self.check_visible_to(by)
        if not self.is_group:
            raise InvalidCommandError("Members of a direct chat cannot be removed; delete it")
        if user_id not in self.members:
            raise NotFoundError("User is not a member of this chat")
        if by != self.creator and by != user_id:
            raise ForbiddenError("Only the chat's creator can remove other members")
        if user_id == self.creator:
            raise InvalidCommandError("The creator cannot leave the chat; delete it instead")
        self._member_removed(chat=self.number, user_id=user_id, by=by)

    @event(MemberRemoved)
    def _member_removed(self, chat: int, user_id: int, by: int) -> None:
        self.members.remove(user_id)

    def delete(self, by: int) -> None:
        """A group's creator, or either member of a direct chat."""
        self.check_visible_to(by)
        if self.is_group and by != self.creator:
            raise ForbiddenError("Only the chat's creator can delete it")
        self._deleted(chat=self.number, by=by)

    @event(Deleted)
    def _deleted(self, chat: int, by: int) -> None:
        self.deleted = True


class DirectChatIndex(Aggregate):
    """One per pair of users: a second direct chat for the pair collides on its uuid5 id.

    Once the pair's chat is deleted, the next direct chat between them is pointed to here
    (CONTRACT.md: a deleted direct chat can be created again); two doing it at once collide
    on the index's next version, as two first creations collide on its id.
    """

    @staticmethod
    def create_id(user_a: int, user_b: int) -> UUID:
        return ids.direct_chat_index_id(user_a, user_b)

    @event("Claimed")
    def __init__(self, user_a: int, user_b: int, chat_number: int) -> None:
        self.users = sorted((user_a, user_b))
        self.chat_number = chat_number

    def point_to(self, chat_number: int) -> None:
        """The pair's direct chat is now `chat_number` (the one before was deleted)."""
        self._pointed(chat_number=chat_number)

    @event("Pointed")
    def _pointed(self, chat_number: int) -> None:
        self.chat_number = chat_number
