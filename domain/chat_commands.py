"""Chat, message and attachment commands. Membership is checked here, on the write side."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.attachment import Attachment
from domain.chat import Chat, DirectChatIndex, title_seen_by
from domain.chat_cache import ChatCache
from domain.errors import ForbiddenError, InvalidCommandError, NotFoundError
from domain.eventstore.application import EventStoreApp
from domain.eventstore.idempotency import Claim
from domain.eventstore.recorder import StaleReadError
from domain.message import SYSTEM, VOICE, Message, check_postable
from domain.outcomes import Change, Effect, Outcome, Resource
from domain.reaction import Reaction, check_emoji
from domain.read_marker import ReadMarker
from domain.uploads import Stat, UploadPolicy
from domain.user import User


class ChatCommands(EventStoreApp):
    """Create, rename, delete chats; change members; post and edit messages; attachments."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._chat_cache = ChatCache()
        self.uploads = UploadPolicy()  # the command API sets it from Settings

    def _forget(self, stale: Iterable[UUID]) -> None:
        self._chat_cache.forget(stale)

    def _chat_visible_to(self, number: int, user: int) -> Chat:
        """The chat, checked visible to `user`, for a decision that leaves it unchanged.

        It may come from `ChatCache` and be stale. A yes is safe: the append names the
        version it was decided on (`read=`) and fails as stale if the chat moved since, and
        `run_command` forgets it and decides again. A no is never taken from there: it is
        checked again on the stored chat (a member just added must be able to post).
        The chat returned must not be changed.
        """
        cached = self._chat_cache.get(Chat.create_id(number))
        if cached is not None and cached.is_visible_to(user):
            return cached
        chat = self._chat(number)
        self._chat_cache.put(chat)
        chat.check_visible_to(user)
        return chat

    def _chat(self, number: int) -> Chat:
        return self._load(Chat.create_id(number), Chat, "Chat not found")

    def _system_message(self, chat: Chat, by: int, action: str, **details: Any) -> Message:
        """The server's own note of a change, posted in the chat it describes."""
        return Message(number=self._next_number("message"), chat=chat.number, author=by,
                       type=SYSTEM, content=action.replace("_", " "),
                       payload={"action": action, **details})

    def title_seen_by(self, chat: Chat, viewer: int) -> str | None:
        """The chat's title as `viewer` sees it (a direct chat's: the other member's name)."""
        return title_seen_by(viewer, chat.title, chat.is_group, chat.members, self._name_of)

    def _name_of(self, number: int) -> str | None:
        try:
            return self._load(User.create_id(number), User, "").display_name
        except NotFoundError:
            return None

    def _check_users(self, numbers: list[int]) -> None:
        unknown = [n for n in numbers if not self._exists(User.create_id(n))]
        if unknown:
            raise InvalidCommandError(f"Unknown user ids: {unknown}")

    def create_chat(self, claim: Claim, creator: int, title: str | None, is_group: bool,
                    member_ids: list[int]) -> Outcome[tuple[Chat, bool]]:
        """A group chat, or the pair's one direct chat (returned, not created, if it exists)."""
        others = [m for m in dict.fromkeys(member_ids) if m != creator]
        if is_group and not title:
            raise InvalidCommandError("title is required for a group chat")
        if not is_group and len(others) != 1:
            raise InvalidCommandError("A direct chat needs exactly one other user in member_ids")
        self._check_users(others)
        index = None if is_group else self._direct_index(creator, others[0])
        if index is not None:
            existing = self._chat(index.chat_number)
            if not existing.deleted:
                return self._found(existing)
        chat = Chat(number=self._next_number("chat"), creator=creator, title=title,
                    is_group=is_group, members=[creator, *others])
        if not is_group:
            if index is None:
                index = DirectChatIndex(creator, others[0], chat.number)
            else:
                index.point_to(chat.number)
        note = self._system_message(chat, creator, "chat_created", title=title)
        effect = Effect(Change.CREATED, Resource.CHAT, chat.number)
        try:
            position = self._save(claim, effect, chat, note, index)
        except IntegrityError:
            if is_group:
                raise
            index = self._direct_index(creator, others[0])  # created concurrently: that one
            if index is None:
                raise
            return self._found(self._chat(index.chat_number))
        return Outcome((chat, True), position, effect)

    @staticmethod
    def _found(chat: Chat) -> Outcome[tuple[Chat, bool]]:
        """The pair's existing direct chat, returned: nothing is written."""
        return Outcome((chat, False), 0, Effect(Change.FOUND, Resource.CHAT, chat.number))

    def _direct_index(self, user_a: int, user_b: int) -> DirectChatIndex | None:
        try:
            return self._load(DirectChatIndex.create_id(user_a, user_b), DirectChatIndex, "")
        except NotFoundError:
            return None

    def rename_chat(self, claim: Claim, by: int, number: int, title: str) -> Outcome[Chat]:
        chat = self._chat(number)
        chat.rename(by, title)
        note = self._system_message(chat, by, "chat_renamed", title=title)
        effect = Effect(Change.CHANGED, Resource.CHAT, number)
        return Outcome(chat, self._save(claim, effect, chat, note), effect)

    def delete_chat(self, claim: Claim, by: int, number: int) -> Outcome[Chat]:
        chat = self._chat(number)
        chat.delete(by)
        effect = Effect(Change.REMOVED, Resource.CHAT, number)
        return Outcome(chat, self._save(claim, effect, chat), effect)

    def add_members(self, claim: Claim, by: int, number: int,
                    user_ids: list[int]) -> Outcome[Chat]:
        chat = self._chat(number)
        chat.check_visible_to(by)
        self._check_users(user_ids)
        added = chat.add_members(by, user_ids)
        notes = [self._system_message(chat, by, "members_added", user_ids=added)] if added else []
        effect = Effect(Change.CHANGED, Resource.MEMBERS, number)
        return Outcome(chat, self._save(claim, effect, chat, *notes), effect)

    def remove_member(self, claim: Claim, by: int, number: int, user_id: int) -> Outcome[Chat]:
        chat = self._chat(number)
        chat.remove_member(by, user_id)
        action = "member_left" if by == user_id else "member_removed"
        note = self._system_message(chat, by, action, user_id=user_id)
        effect = Effect(Change.REMOVED, Resource.MEMBER, user_id)
        return Outcome(chat, self._save(claim, effect, chat, note), effect)

    def post_message(self, claim: Claim, author: int, chat_number: int, type: str,
                     content: str | None, payload: dict[str, Any] | None,
                     stat: Stat | None = None, reply_to: int | None = None) -> Outcome[Message]:
        """Post as a member; a voice message carries the author's own attachment, uploaded
        with the type and within the size it was signed for (`stat`: what storage holds);
        a reply answers a message of the same chat that is still there."""
        check_postable(type, content, payload)
        chat = self._chat_visible_to(chat_number, author)
        read: list[Aggregate] = [chat]
        if reply_to is not None:
            try:
                answered = self._load(Message.create_id(reply_to), Message, "")
            except NotFoundError:
                raise InvalidCommandError("reply_to_id must be a message of the same chat") \
                    from None
            answered.check_reply_in(chat_number)
            read.append(answered)  # deleted meanwhile: decided again, and refused
        if type == VOICE:
            assert payload is not None and stat is not None, "a voice message needs `stat`"
            attachment = self.attachment_of(author, UUID(str(payload["attachment_id"])))
            self.uploads.check_uploaded(attachment.content_type, stat(attachment.key))
        message = Message(number=self._next_number("message"), chat=chat_number, author=author,
                          type=type, content=content, payload=payload, reply_to=reply_to)
        effect = Effect(Change.CREATED, Resource.MESSAGE, message.number)
        return Outcome(message, self._save(claim, effect, message, read=read), effect)

    def _visible_message(self, number: int, user: int) -> tuple[Message, Chat]:
        """The message and its chat, or NotFoundError if `user` cannot see it (not a member
        of its chat now, the chat deleted, or the message deleted)."""
        message = self._load(Message.create_id(number), Message, "Message not found")
        try:
            chat = self._chat_visible_to(message.chat, user)
        except (NotFoundError, ForbiddenError) as exc:  # not visible: as if it did not exist
            raise NotFoundError("Message not found") from exc
        if message.deleted:
            raise NotFoundError("Message not found")
        return message, chat

    def edit_message(self, claim: Claim, by: int, number: int, content: str) -> Outcome[Message]:
        message, chat = self._visible_message(number, by)
        message.edit(by, content)
        effect = Effect(Change.CHANGED, Resource.MESSAGE, number)
        return Outcome(message, self._save(claim, effect, message, read=[chat]), effect)

    def delete_message(self, claim: Claim, by: int, number: int) -> Outcome[Message]:
        """The author, or a group chat's creator, deletes a text or voice message."""
        message, chat = self._visible_message(number, by)
        message.delete(by, chat.creator if chat.is_group else None)
        effect = Effect(Change.REMOVED, Resource.MESSAGE, number)
        return Outcome(message, self._save(claim, effect, message, read=[chat]), effect)

    def add_reaction(self, claim: Claim, user: int, number: int,
                     emoji: str) -> Outcome[Reaction]:
        """A member adds an emoji to a message that is still there; one already there is
        found (`Change.FOUND`: nothing written)."""
        check_emoji(emoji)
        message, chat = self._visible_message(number, user)
        reaction = self._reaction(number, user, emoji)
        if reaction is not None and reaction.present:
            return Outcome(reaction, 0, Effect(Change.FOUND, Resource.REACTION, number))
        if reaction is None:
            reaction = Reaction(message=number, chat=message.chat, user=user, emoji=emoji)
        else:
            reaction.add()
        return self._save_reaction(claim, Effect(Change.CREATED, Resource.REACTION, number),
                                   reaction, message, chat)

    def remove_reaction(self, claim: Claim, user: int, number: int,
                        emoji: str) -> Outcome[Reaction]:
        """A member takes back their own emoji (NotFoundError if it is not there)."""
        check_emoji(emoji)
        message, chat = self._visible_message(number, user)
        reaction = self._reaction(number, user, emoji)
        if reaction is None:
            raise NotFoundError("Reaction not found")
        reaction.remove()
        return self._save_reaction(claim, Effect(Change.REMOVED, Resource.REACTION, number),
                                   reaction, message, chat)

    def _reaction(self, number: int, user: int, emoji: str) -> Reaction | None:
        try:
            return self._load(Reaction.create_id(number, user, emoji), Reaction, "")
        except NotFoundError:
            return None

    def _save_reaction(self, claim: Claim, effect: Effect, reaction: Reaction,
                       message: Message, chat: Chat) -> Outcome[Reaction]:
        """Saved only if the message and its chat are as read (not deleted, the user still a
        member); the same reaction changed meanwhile by the same user: decided again."""
        try:
            position = self._save(claim, effect, reaction, read=[message, chat])
        except IntegrityError:
            raise StaleReadError({reaction.id}) from None
        return Outcome(reaction, position, effect)

    def mark_read(self, user: int, chat_number: int,
                  message_number: int) -> Outcome[ReadMarker]:
        """Move the member's read marker forward to a message of the chat; a message at or
        before it writes nothing (`Change.FOUND`). Needs no Idempotency-Key: repeating it
        changes nothing."""
        chat = self._chat_visible_to(chat_number, user)
        try:
            message = self._load(Message.create_id(message_number), Message, "")
            message.check_in(chat_number)
        except (NotFoundError, InvalidCommandError):
            raise InvalidCommandError("message_id must be a message of this chat") from None
        marker_id = ReadMarker.create_id(chat_number, user)
        try:
            marker: ReadMarker | None = self._load(marker_id, ReadMarker, "")
        except NotFoundError:
            marker = None
        if marker is not None and marker.covers(message_number):
            return Outcome(marker, 0, Effect(Change.FOUND, Resource.READ_MARKER, chat_number))
        if marker is None:
            marker = ReadMarker(chat=chat_number, user=user, message=message_number)
        else:
            marker.move_to(message_number)
        effect = Effect(Change.CHANGED, Resource.READ_MARKER, chat_number)
        try:
            position = self._save(None, effect, marker, read=[chat])
        except IntegrityError:  # moved by another request meanwhile: decide on what it did
            raise StaleReadError({marker_id}) from None
        return Outcome(marker, position, effect)

    def request_attachment(self, claim: Claim, owner: int, attachment_id: UUID, key: str,
                           filename: str, content_type: str) -> Outcome[Attachment]:
        """Record an upload slot the policy allowed (`self.uploads.slot`) for its owner."""
        attachment = Attachment(attachment_id=str(attachment_id), owner=owner, key=key,
                                filename=filename, content_type=content_type)
        effect = Effect(Change.CREATED, Resource.ATTACHMENT, attachment_id)
        return Outcome(attachment, self._save(claim, effect, attachment), effect)

    def attachment_of(self, owner: int, attachment_id: UUID) -> Attachment:
        """The caller's own attachment, or InvalidCommandError (a voice message's 400)."""
        try:
            attachment = self._load(attachment_id, Attachment, "Attachment not found")
        except NotFoundError:
            raise InvalidCommandError("Unknown attachment") from None
        if attachment.owner != owner:
            raise InvalidCommandError("Unknown attachment")
        return attachment
