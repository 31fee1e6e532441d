"""Search (CONTRACT.md "Conversation state"): `GET /search/messages` over the caller's chats."""

from __future__ import annotations

from typing import Any

from tests.e2e.client import Api, User


def found(user: User, q: str, **params: Any) -> list[dict[str, Any]]:
    response = user.get("/search/messages", q=q, **params)
    assert response.status_code == 200, (q, response.text)
    return response.json()


def ids(user: User, q: str, **params: Any) -> list[int]:
    return [m["id"] for m in found(user, q, **params)]


def test_latin_and_cyrillic_words_match_by_prefix_whatever_the_case(api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    hello = ann.say(chat, "Hello, World!")
    privet = bob.say(chat, "Привет, мир! Ёлка")
    for q in ("hello", "HEL", "h", "wor", "world!", "  hello  "):
        assert ids(bob, q) == [hello["id"]], q
    for q in ("привет", "прив", "ПРИВЕТ", "Мир", "ёл", "ЁЛКА"):
        assert ids(ann, q) == [privet["id"]], q
    for q in ("ello", "orld", "ривет", "hellos", "приветы", "hello world again"):
        assert ids(ann, q) == [], q  # a word's beginning, not any part of it
    # the REST message shape, exactly as GET /messages has it
    assert found(bob, "hello") == [hello]
    assert found(ann, "мир") == [m for m in ann.get("/messages", chat_id=chat).json()
                                 if m["id"] == privet["id"]]


def test_every_word_must_match_and_hits_come_newest_first(api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    there = ann.say(chat, "hello there")
    world = bob.say(chat, "hello world")
    mixed = ann.say(chat, "World, здравствуй, hello-kitty")
    assert ids(ann, "hello") == [mixed["id"], world["id"], there["id"]]
    assert ids(ann, "hel wor") == [mixed["id"], world["id"]]
    assert ids(ann, "wor hel") == [mixed["id"], world["id"]]
    assert ids(ann, "hello there") == [there["id"]]
    assert ids(ann, "hello здр") == [mixed["id"]]
    assert ids(ann, "kitty") == [mixed["id"]]  # "hello-kitty" is two words
    assert ids(ann, "hello there world") == []


def test_deleted_messages_and_deleted_chats_never_match(api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    gone = ann.say(chat, "ephemeral thought")
    kept = ann.say(chat, "ephemeral but kept")
    assert ids(bob, "ephemeral") == [kept["id"], gone["id"]]
    assert ann.delete(f"/messages/{gone['id']}").status_code == 204
    assert ids(bob, "ephemeral") == [kept["id"]]
    assert ids(bob, "thought") == []
    assert ann.delete(f"/chats/{chat}").status_code == 204
    assert ids(bob, "ephemeral") == []
    assert ids(ann, "ephemeral") == []


def test_an_edited_message_matches_by_its_current_text(api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    said = ann.say(chat, "apple pie")
    edited = ann.patch(f"/messages/{said['id']}", {"content": "banana split"})
    assert edited.status_code == 200, edited.text
    assert ids(bob, "apple") == []
    assert found(bob, "banana spl") == [edited.json()]
    assert found(bob, "banana")[0]["edited_at"] is not None
    # words gone and back again, through a text of punctuation alone
    assert ann.patch(f"/messages/{said['id']}", {"content": "?!"}).status_code == 200
    assert ids(bob, "banana") == []
    assert ann.patch(f"/messages/{said['id']}", {"content": "cherry"}).status_code == 200
    assert ids(bob, "cherry") == [said["id"]]


def test_a_member_who_left_and_a_non_member_find_nothing_of_the_chat(api: Api) -> None:
    ann, bob, eve = User(api, "Ann"), User(api, "Bob"), User(api, "Eve")
    chat = ann.group(bob)["id"]
    secret = ann.say(chat, "secret plans")
    assert ids(bob, "secret") == [secret["id"]]
    assert ids(eve, "secret") == []
    assert eve.get("/search/messages", q="secret", chat_id=chat).status_code == 403
    assert ann.delete(f"/chats/{chat}/members/{bob.id}").status_code == 204
    assert ids(bob, "secret") == []  # a message from while they were a member
    assert bob.get("/search/messages", q="secret", chat_id=chat).status_code == 403
    assert ids(ann, "secret") == [secret["id"]]
    assert ann.post(f"/chats/{chat}/members", {"user_ids": [bob.id]}).status_code in (200, 201)
    assert ids(bob, "secret") == [secret["id"]]  # membership now decides


def test_chat_id_restricts_to_one_chat_of_the_caller(api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    first, second = ann.group(bob)["id"], ann.group(bob, title="Second")["id"]
    one = ann.say(first, "kiwi in the first")
    two = bob.say(second, "kiwi in the second")
    assert ids(ann, "kiwi") == [two["id"], one["id"]]
    assert ids(ann, "kiwi", chat_id=first) == [one["id"]]
    assert ids(bob, "kiwi", chat_id=second) == [two["id"]]
    assert ann.get("/search/messages", q="kiwi", chat_id=2**62).status_code == 404
    assert ann.delete(f"/chats/{second}").status_code == 204
    assert ann.get("/search/messages", q="kiwi", chat_id=second).status_code == 404


def test_paging_back_with_before_id_and_limit(api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    said = [ann.say(chat, f"mango number {n}")["id"] for n in range(5)]
    ann.say(chat, "papaya")
    newest = said[::-1]
    assert ids(ann, "mango") == newest
    assert ids(ann, "mango", limit=2) == newest[:2]
    assert ids(ann, "mango", limit=2, before_id=newest[1]) == newest[2:4]
    assert ids(ann, "mango", limit=2, before_id=newest[3]) == newest[4:]
    assert ids(ann, "mango", limit=2, before_id=newest[4]) == []
    assert ids(ann, "mango", limit=1000) == newest
    assert ids(ann, "mango", before_id=2**63 - 1, chat_id=chat) == newest


def test_a_page_holds_at_most_100(api: Api) -> None:
    ann = User(api, "Ann")
    chat = ann.group(User(api, "Bob"))["id"]
    said = [ann.say(chat, f"durian {n}")["id"] for n in range(101)]
    assert ids(ann, "durian") == said[:-51:-1]  # 50 by default
    assert ids(ann, "durian", limit=1000) == said[:-101:-1]  # treated as 100
    assert ids(ann, "durian", before_id=said[1]) == [said[0]]


def test_voice_and_system_messages_are_not_searched(api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    notes = [m for m in ann.get("/messages", chat_id=chat).json() if m["type"] == "system"]
    assert notes and all(m["content"] == "chat created" for m in notes)
    assert ids(ann, "chat created") == []
    said = ann.say(chat, "chat created by hand")
    assert ids(ann, "chat created") == [said["id"]]


BAD_QUERIES = ["", "   ", "x" * 201, "!!! ??? ...", "a b c d e f g h i j k", "_"]
HOSTILE = ["a' & b", "'", "\\", "a:*", "!(x", "a <-> b", "x | y", "a & !b", "'x':* | 'y'",
           "*", ":", "a:A", "%", "a\x00b", "‮", "🙂", "NULL", "') OR 1=1 --"]


def test_bad_q_is_400_and_hostile_q_never_breaks_the_query(api: Api) -> None:
    ann, bob = User(api, "Ann"), User(api, "Bob")
    chat = ann.group(bob)["id"]
    ann.say(chat, "a b x y")
    missing = ann.get("/search/messages")
    assert missing.status_code == 400 and isinstance(missing.json()["detail"], str)
    for q in BAD_QUERIES:
        response = ann.get("/search/messages", q=q)
        assert response.status_code == 400, (q, response.text)
        assert isinstance(response.json()["detail"], str)
    for q in HOSTILE:
        response = ann.get("/search/messages", q=q)
        assert response.status_code in (200, 400), (q, response.text)
        assert response.status_code == 200 or isinstance(response.json()["detail"], str)
    # operators are separators, never syntax: these are plain words
    assert len(found(ann, "a' & b")) == len(found(ann, "a | b")) == 1
    assert found(ann, "a & !x") == found(ann, "a x")
    assert found(ann, " " * 300 + "a" * 200 + " " * 300) == []  # long only by its spaces
    assert found(ann, "a b c d e f g h i j") == []  # ten words are allowed
    for name, value in (("limit", "0"), ("limit", "x"), ("before_id", "-1"), ("chat_id", "a"),
                        ("chat_id", "0"), ("before_id", "1.5")):
        response = ann.get("/search/messages", q="a", **{name: value})
        assert response.status_code == 400, (name, value, response.text)
