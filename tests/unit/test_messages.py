"""What a client may post, including a voice message's upload, without servers."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from domain.app import Claim, Parley
from domain.errors import ForbiddenError, InvalidCommandError, NotFoundError
from domain.message import Message, check_postable
from domain.uploads import StoredUpload, UploadPolicy
from shared.schemas import MessageOut

_keys = itertools.count()
VOICE_FIELDS = "A voice message needs a payload (attachment_id, duration_ms, codec) and no content"


@dataclass(frozen=True)
class Stored:
    size: int
    content_type: str


def claim(user: int) -> Claim:
    return Claim(f"user:{user}", f"m{next(_keys)}", "fp")


@pytest.fixture
def app() -> Parley:
    parley = Parley(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    parley.uploads = UploadPolicy(("audio/*",), max_bytes=1000)
    for n in (1, 2, 3):
        parley.register_user(Claim("anonymous", f"r{n}", "fp"), f"u{n}@example.com", "h",
                             f"User {n}", None, "t")
    return parley


@pytest.fixture
def chat(app: Parley) -> int:
    return app.create_chat(claim(1), 1, "Team", True, [2]).value[0].number


def voice(attachment_id: uuid.UUID) -> dict[str, Any]:
    return {"attachment_id": str(attachment_id), "duration_ms": 5000, "codec": "opus"}


def attachment(app: Parley, owner: int, content_type: str = "audio/opus") -> uuid.UUID:
    slot = app.uploads.slot("voice.opus", content_type)
    app.request_attachment(claim(owner), owner, slot.attachment_id, slot.key, slot.filename,
                           slot.content_type)
    return slot.attachment_id


def holding(stored: StoredUpload | None) -> Any:
    """What storage answers for any key."""
    return lambda key: stored


@pytest.mark.parametrize(("kind", "content", "payload", "error", "detail"), [
    ("system", "hi", None, ForbiddenError, "System messages are written by the server only"),
    ("text", None, None, InvalidCommandError, "A text message needs non-empty content"),
    ("text", "", None, InvalidCommandError, "A text message needs non-empty content"),
    ("text", " \n\t", None, InvalidCommandError, "A text message needs non-empty content"),
    ("text", "hi", {"x": 1}, InvalidCommandError, "A text message needs non-empty content"),
    ("voice", None, None, InvalidCommandError, VOICE_FIELDS),
    ("voice", "hi", {"attachment_id": "x"}, InvalidCommandError, VOICE_FIELDS),
])
def test_what_may_not_be_posted(kind: str, content: str | None, payload: dict[str, Any] | None,
                                error: type[Exception], detail: str) -> None:
    with pytest.raises(error) as raised:
        check_postable(kind, content, payload)
    assert str(raised.value).startswith(detail)


def test_the_kind_rules_come_before_the_chat(app: Parley) -> None:
    """A system message is 403 even in a chat that does not exist (as the API answered)."""
    with pytest.raises(ForbiddenError):
        app.post_message(claim(1), 1, 999, "system", "hi", None)
    with pytest.raises(InvalidCommandError):
        app.post_message(claim(1), 1, 999, "voice", None, None)
    with pytest.raises(NotFoundError):
        app.post_message(claim(1), 1, 999, "text", "hi", None)


def test_a_voice_message_carries_its_authors_uploaded_attachment(app: Parley, chat: int) -> None:
    mine = attachment(app, 2)
    posted = app.post_message(claim(2), 2, chat, "voice", None, voice(mine),
                              holding(Stored(1000, "audio/opus")))
    assert posted.value.payload == voice(mine) and posted.value.type == "voice"


def test_a_voice_message_needs_a_member_before_its_attachment(app: Parley, chat: int) -> None:
    theirs = attachment(app, 3)
    with pytest.raises(ForbiddenError):  # user 3 is not in the chat: 403 before anything else
        app.post_message(claim(3), 3, chat, "voice", None, voice(theirs),
                         holding(Stored(10, "audio/opus")))


@pytest.mark.parametrize(("stored", "detail"), [
    (None, "The attachment has not been uploaded"),
    (Stored(10, "audio/ogg"), "The uploaded attachment does not match its upload policy"),
    (Stored(1001, "audio/opus"), "The uploaded attachment does not match its upload policy"),
])
def test_a_voice_upload_must_be_what_was_signed(app: Parley, chat: int,
                                                stored: Stored | None, detail: str) -> None:
    mine = attachment(app, 2)
    with pytest.raises(InvalidCommandError, match=detail):
        app.post_message(claim(2), 2, chat, "voice", None, voice(mine), holding(stored))


def test_a_voice_message_cannot_carry_someone_elses_attachment(app: Parley, chat: int) -> None:
    theirs = attachment(app, 1)
    for attachment_id in (theirs, uuid.uuid4()):
        with pytest.raises(InvalidCommandError, match="Unknown attachment"):
            app.post_message(claim(2), 2, chat, "voice", None, voice(attachment_id),
                             holding(Stored(10, "audio/opus")))


def test_the_message_shape_is_one_mapping_from_aggregate_and_events(app: Parley,
                                                                     chat: int) -> None:
    posted = app.post_message(claim(2), 2, chat, "text", "hi", None).value
    edited = app.edit_message(claim(2), 2, posted.number, "hello").value
    first, second = app.events.get(edited.id)
    assert isinstance(first, Message.Posted) and isinstance(second, Message.Edited)
    out = MessageOut.of(edited, edited.created_on, edited.modified_on)
    assert out == MessageOut(id=posted.number, chat_id=chat, author_id=2, type="text",
                             content="hello", payload=None, ts=first.timestamp,
                             edited_at=second.timestamp)
    assert MessageOut.of(second, second.posted_at, second.timestamp) == out
    assert MessageOut.of(first, first.timestamp) == out.model_copy(
        update={"content": "hi", "edited_at": None})


# -- replies and deleting --------------------------------------------------------------------

def text(app: Parley, author: int, chat: int, reply_to: int | None = None) -> Message:
    return app.post_message(claim(author), author, chat, "text", "hi", None,
                            reply_to=reply_to).value


def test_a_reply_answers_a_message_of_the_same_chat_still_there(app: Parley, chat: int) -> None:
    first = text(app, 1, chat)
    answer = text(app, 2, chat, reply_to=first.number)
    assert answer.reply_to == first.number
    assert MessageOut.of(answer, answer.created_on).reply_to_id == first.number
    edited = app.edit_message(claim(2), 2, answer.number, "edited").value
    assert edited.reply_to == first.number  # an edit keeps it, in its event too
    other = app.create_chat(claim(1), 1, "Other", True, [2]).value[0].number
    elsewhere = text(app, 1, other)
    for target in (elsewhere.number, 10**9):
        with pytest.raises(InvalidCommandError, match="reply_to_id"):
            text(app, 1, chat, reply_to=target)
    app.delete_message(claim(1), 1, first.number)
    with pytest.raises(InvalidCommandError, match="reply_to_id"):
        text(app, 2, chat, reply_to=first.number)


def test_who_may_delete_a_message(app: Parley, chat: int) -> None:
    app.add_members(claim(1), 1, chat, [3])
    by_member = text(app, 2, chat)
    with pytest.raises(ForbiddenError):  # another member: neither author nor creator
        app.delete_message(claim(3), 3, by_member.number)
    deleted = app.delete_message(claim(1), 1, by_member.number)  # the group's creator
    assert deleted.value.deleted and deleted.effect.change == "removed"
    for again in (1, 2):  # gone: as if it never was, for edits and deletes alike
        with pytest.raises(NotFoundError):
            app.delete_message(claim(again), again, by_member.number)
    with pytest.raises(NotFoundError):
        app.edit_message(claim(2), 2, by_member.number, "x")
    system = next(n for n in range(1, by_member.number)
                  if app.repository.get(Message.create_id(n)).type == "system")
    with pytest.raises(ForbiddenError, match="System"):
        app.delete_message(claim(1), 1, system)


def test_in_a_direct_chat_only_the_author_deletes(app: Parley) -> None:
    direct = app.create_chat(claim(1), 1, None, False, [2]).value[0].number
    theirs = text(app, 2, direct)
    with pytest.raises(ForbiddenError):
        app.delete_message(claim(1), 1, theirs.number)  # the direct chat's "creator"
    assert app.delete_message(claim(2), 2, theirs.number).value.deleted


def test_a_non_member_finds_no_message_to_delete(app: Parley, chat: int) -> None:
    said = text(app, 2, chat)
    with pytest.raises(NotFoundError):
        app.delete_message(claim(3), 3, said.number)
    app.remove_member(claim(2), 2, chat, 2)  # left: no longer visible to the author either
    with pytest.raises(NotFoundError):
        app.delete_message(claim(2), 2, said.number)


def test_stored_version_1_edits_read_as_no_reply() -> None:
    state: dict[str, Any] = {"number": 1}
    Message.Edited.upcast_v1_v2(state)
    assert state == {"number": 1, "reply_to": None}
