"""A randomized workload through the domain commands: every kind of event the read models keep.

Users, group and direct chats, text and voice messages, replies, edits, deleted messages, read
markers, renames, members added and removed, deleted chats, logins and logouts, reactions
added, removed and added again; each command
with its own Idempotency-Key, as the API sends them.
Refused commands (a removed member posting, editing in a deleted chat) are part of the game.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import Counter
from dataclasses import dataclass

from domain.app import Claim, Parley
from domain.errors import DomainError
from domain.message import Message
from domain.outcomes import Change

MAX_REFUSED = 0.25  # the seeds in use see 4-14% refused (adding a member twice, a rename by
# a non-creator, an edit in a deleted chat)


@dataclass(frozen=True)
class Uploaded:
    """What storage would hold for a voice upload: the workload never uploads the file."""

    size: int
    content_type: str


class Workload:
    """Random commands against one application; remembers what it wrote."""

    def __init__(self, app: Parley, seed: int) -> None:
        self.app = app
        self.rng = random.Random(seed)
        self.keys = itertools.count()
        self.users: list[int] = []
        self.chats: list[int] = []
        self.deleted: set[int] = set()
        self.messages: dict[int, int] = {}  # message number -> chat number
        self.deleted_messages = 0
        self.reacted: list[tuple[int, int, str]] = []  # (message, user, emoji) ever added
        self.last_position = 0
        self.accepted: Counter[str] = Counter()  # steps that took effect, by action
        self.refused: Counter[str] = Counter()  # steps the rules refused, by action

    def claim(self, user: int) -> Claim:
        return Claim(f"user:{user}", f"workload-{uuid.uuid4().hex}-{next(self.keys)}", "fp")

    def _done(self, position: int) -> None:
        self.last_position = max(self.last_position, position)

    def setup(self, users: int = 6) -> None:
        for _ in range(users):
            tag = uuid.uuid4().hex[:10]
            outcome = self.app.register_user(Claim("anonymous", tag, "fp"),
                                             f"{tag}@example.com", "hash", f"User {tag}", None,
                                             tag)
            self.users.append(outcome.value[0].number)
            self._done(outcome.position)
        for title in ("Team", "Friends", "Family"):
            self.create_group(title)
        self.create_direct()

    def create_group(self, title: str) -> None:
        creator = self.rng.choice(self.users)
        members = self.rng.sample(self.users, min(3, len(self.users)))
        outcome = self.app.create_chat(self.claim(creator), creator, title, True, members)
        self.chats.append(outcome.value[0].number)
        self._done(outcome.position)

    def create_direct(self) -> None:
        a, b = self.rng.sample(self.users, 2)
        outcome = self.app.create_chat(self.claim(a), a, None, False, [b])
        if outcome.value[1]:
            self.chats.append(outcome.value[0].number)
            self._done(outcome.position)

    def step(self) -> None:
        action = self.rng.choices(
            [self.post, self.post_voice, self.reply, self.edit, self.delete_message,
             self.mark_read, self.add_member, self.remove_member, self.rename,
             self.login_and_logout, self.react], [50, 5, 8, 12, 4, 10, 8, 7, 5, 3, 20])[0]
        try:
            action()
        except DomainError:
            self.refused[action.__name__] += 1  # the rules refused it, as they would over HTTP
        else:
            self.accepted[action.__name__] += 1

    def live_chats(self) -> list[int]:
        return [c for c in self.chats if c not in self.deleted]

    def _member(self, chat: int) -> int:
        return self.rng.choice(self.app._chat(chat).members)

    def post(self) -> None:
        chat = self.rng.choice(self.live_chats())
        author = self._member(chat)
        outcome = self.app.post_message(self.claim(author), author, chat, "text",
                                        f"hello {self.rng.random():.6f}", None)
        self.messages[outcome.value.number] = chat
        self._done(outcome.position)

    def post_voice(self) -> None:
        chat = self.rng.choice(self.live_chats())
        author = self._member(chat)
        attachment_id = uuid.uuid4()
        requested = self.app.request_attachment(self.claim(author), author, attachment_id,
                                                f"voice/{attachment_id}.opus", "voice.opus",
                                                "audio/opus")
        self._done(requested.position)
        payload = {"attachment_id": str(attachment_id), "duration_ms": 1200, "codec": "opus",
                   "waveform": [self.rng.randrange(32) for _ in range(8)]}
        outcome = self.app.post_message(self.claim(author), author, chat, "voice", None,
                                        payload, stat=lambda key: Uploaded(1, "audio/opus"))
        self.messages[outcome.value.number] = chat
        self._done(outcome.position)

    def reply(self) -> None:
        if not self.messages:
            return
        answered = self.rng.choice(list(self.messages))
        chat = self.messages[answered]
        author = self._member(chat)
        outcome = self.app.post_message(self.claim(author), author, chat, "text",
                                        f"re {self.rng.random():.6f}", None, reply_to=answered)
        self.messages[outcome.value.number] = chat
        self._done(outcome.position)

    def react(self) -> None:
        """A member toggles an emoji on a message: added, removed, and maybe added again."""
        if self.reacted and self.rng.random() < 0.5:  # toggle an earlier one: taken back, again
            number, user, emoji = self.rng.choice(self.reacted)
        elif self.messages:
            number = self.rng.choice(list(self.messages))
            user = self._member(self.messages[number])
            emoji = self.rng.choice(["👍", "🎉", "❤️"])
            self.reacted.append((number, user, emoji))
        else:
            return
        outcome = self.app.add_reaction(self.claim(user), user, number, emoji)
        if outcome.effect.change is Change.FOUND:
            outcome = self.app.remove_reaction(self.claim(user), user, number, emoji)
        self._done(outcome.position)

    def delete_message(self) -> None:
        if not self.messages:
            return
        number = self.rng.choice(list(self.messages))
        author = self.app._load(Message.create_id(number), Message, "").author
        outcome = self.app.delete_message(self.claim(author), author, number)
        del self.messages[number]
        self.deleted_messages += 1
        self._done(outcome.position)

    def mark_read(self) -> None:
        if not self.messages:
            return
        number = self.rng.choice(list(self.messages))
        chat = self.messages[number]
        reader = self._member(chat)
        outcome = self.app.mark_read(reader, chat, number)
        self._done(outcome.position)

    def read_all_then_delete(self, deletions: int) -> None:
        """Every member reads every live chat to its newest message, then some messages go:
        the counts of those who had read them must not move."""
        live = [c for c in self.live_chats() if not self.app._chat(c).deleted]
        for chat in live:
            newest = max((n for n, c in self.messages.items() if c == chat), default=None)
            if newest is not None:
                for member in self.app._chat(chat).members:
                    self._done(self.app.mark_read(member, chat, newest).position)
        candidates = [n for n, c in self.messages.items() if c in live]
        self.rng.shuffle(candidates)
        done = 0
        for number in candidates:  # by their authors, those still members
            if done == deletions:
                break
            author = self.app._load(Message.create_id(number), Message, "").author
            if author not in self.app._chat(self.messages[number]).members:
                continue
            self._done(self.app.delete_message(self.claim(author), author, number).position)
            del self.messages[number]
            self.deleted_messages += 1
            done += 1
        assert done == deletions, f"only {done} messages could be deleted"

    def edit(self) -> None:
        if not self.messages:
            return
        number = self.rng.choice(list(self.messages))
        author = self.app._load(Message.create_id(number), Message, "").author
        outcome = self.app.edit_message(self.claim(author), author, number,
                                        f"edited {self.rng.random():.6f}")
        self._done(outcome.position)

    def add_member(self) -> None:
        chat = self.app._chat(self.rng.choice(self.live_chats()))
        outcome = self.app.add_members(self.claim(chat.creator), chat.creator, chat.number,
                                       self.rng.sample(self.users, 2))
        self._done(outcome.position)

    def remove_member(self) -> None:
        chat = self.app._chat(self.rng.choice(self.live_chats()))
        others = [m for m in chat.members if m != chat.creator]
        if others:
            user = self.rng.choice(others)
            outcome = self.app.remove_member(self.claim(chat.creator), chat.creator,
                                             chat.number, user)
            self._done(outcome.position)

    def rename(self) -> None:
        chat = self.app._chat(self.rng.choice(self.live_chats()))
        outcome = self.app.rename_chat(self.claim(chat.creator), chat.creator, chat.number,
                                       f"Renamed {self.rng.randrange(100)}")
        self._done(outcome.position)

    def login_and_logout(self) -> None:
        user = self.rng.choice(self.users)
        session = self.app.start_session(self.claim(user), user, uuid.uuid4().hex).value
        position = self.app.revoke_session(session.id, "logout")
        assert position is not None
        self._done(position)

    def delete_a_chat(self) -> None:
        """Delete a group chat that has messages (there is always one after some steps)."""
        counts = [list(self.messages.values()).count(c) for c in self.live_chats()]
        chat = self.app._chat(self.live_chats()[counts.index(max(counts))])
        outcome = self.app.delete_chat(self.claim(chat.creator), chat.creator, chat.number)
        self.deleted.add(chat.number)
        self._done(outcome.position)

    def run(self, steps: int) -> None:
        """`steps` random commands, most of which must take effect: a regression that made the
        rules refuse them would otherwise shrink every workload built on this unseen."""
        for _ in range(steps):
            self.step()
        refused, accepted = sum(self.refused.values()), sum(self.accepted.values())
        assert refused <= MAX_REFUSED * (refused + accepted), (self.refused, self.accepted)
        assert self.accepted["post"], (self.refused, self.accepted)
