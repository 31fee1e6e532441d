"""The orjson reader decodes stored state exactly as eventsourcing's JSONTranscoder does."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

from domain.app import Parley
from domain.eventstore.transcoder import FastJSONTranscoder
from domain.message import Message


def transcoders() -> tuple[JSONTranscoder, FastJSONTranscoder]:
    app = Parley(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    fast = app.mapper.transcoder
    assert isinstance(fast, FastJSONTranscoder)  # what the application really uses
    standard = JSONTranscoder()
    app.register_transcodings(standard)
    return standard, fast


STANDARD, FAST = transcoders()


def same_decoding(state: Any) -> Any:
    data = STANDARD.encode(state)
    assert FAST.encode(state) == data  # writing is unchanged
    expected, got = STANDARD.decode(data), FAST.decode(data)
    assert got == expected and _types(got) == _types(expected)
    return got


def _types(value: Any) -> Any:
    """The value's shape with every leaf's type, so 1 and 1.0 or str and UUID differ."""
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value)


def test_tagged_values_are_revived_at_every_depth() -> None:
    when = datetime(2026, 11, 27, 8, 0, 0, 123456, tzinfo=UTC)
    state = {
        "timestamp": when, "id": uuid4(), "amount": Decimal("1.10"),
        "payload": {"attachment_id": uuid4(), "codec": "opus", "nested": [{"at": when}]},
        "ids": [uuid4(), [uuid4(), {"deep": uuid4()}]],
        "plain": {"_type_": "a key named like a tag", "other": 1},
    }
    got = same_decoding(state)
    assert got["timestamp"] == when and isinstance(got["ids"][1][1]["deep"], UUID)
    assert got["plain"] == state["plain"]


def test_what_orjson_refuses_is_read_by_the_standard_decoder() -> None:
    got = same_decoding({"big": 2**70, "negative": -(2**80), "at": datetime.now(UTC)})
    assert got["big"] == 2**70
    nan = FAST.decode(STANDARD.encode({"x": math.nan, "y": math.inf}))
    assert math.isnan(nan["x"]) and nan["y"] == math.inf


def test_text_of_every_kind_survives() -> None:
    same_decoding({"content": "Привет 👋 \u0001 \\ \" \n \t \u2028 ünïcode", "empty": ""})


def test_a_nul_older_versions_stored_is_read_as_u_fffd_wherever_it_is() -> None:
    # PostgreSQL text and jsonb cannot hold U+0000: read as it was, it stopped every projection
    state = {"content": "a\u0000b", "payload": {"k\u0000": ["\u0000", 1]}, "at": uuid4()}
    data = STANDARD.encode(state)
    assert b"\\u0000" in data
    assert FAST.decode(data) == {"content": "a\ufffdb", "payload": {"k\ufffd": ["\ufffd", 1]},
                                 "at": state["at"]}
    text = STANDARD.encode({"content": "a backslash-u: \\u0000"})  # text, not a NUL
    assert FAST.decode(text) == {"content": "a backslash-u: \\u0000"}


def test_an_unknown_tag_is_refused_like_the_standard_decoder_refuses_it() -> None:
    data = b'{"x":{"_type_":"no_such_type","_data_":"1"}}'
    with pytest.raises(TranscodingNotRegisteredError):
        STANDARD.decode(data)
    with pytest.raises(TranscodingNotRegisteredError):
        FAST.decode(data)


def test_random_states_decode_identically() -> None:
    rng = random.Random(7)
    start = datetime(2020, 1, 1, tzinfo=UTC)

    def value(depth: int) -> Any:
        kind = rng.randrange(9 if depth < 3 else 7)
        if kind == 0:
            return rng.randrange(-(2**63), 2**63)
        if kind == 1:
            return rng.random() * 10 ** rng.randrange(-5, 5)
        if kind == 2:
            return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(8)))
        if kind == 3:
            return UUID(int=rng.getrandbits(128))
        if kind == 4:
            return start + timedelta(seconds=rng.randrange(10**9),
                                     microseconds=rng.randrange(10**6))
        if kind == 5:
            return rng.choice([None, True, False])
        if kind == 6:
            return Decimal(rng.randrange(10**6)) / 100
        if kind == 7:
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        return {f"k{i}": value(depth + 1) for i in range(rng.randrange(4))}

    for _ in range(500):
        same_decoding({f"field{i}": value(0) for i in range(rng.randrange(1, 6))})


def test_events_read_back_through_the_application_are_equal() -> None:
    app = Parley(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    message = Message(number=1, chat=2, author=3, type="voice", content=None,
                      payload={"attachment_id": str(uuid4()), "duration_ms": 1500,
                               "codec": "opus"})
    app.save(message)
    for stored in app.recorder.select_events(message.id):
        standard_state = STANDARD.decode(stored.state)
        fast_state = FAST.decode(stored.state)
        assert fast_state == standard_state and _types(fast_state) == _types(standard_state)
    loaded = app.repository.get(message.id)
    assert (loaded.number, loaded.payload, loaded.created_on) == (
        message.number, message.payload, message.created_on)
