"""What a client or the stream hands the gateway is parsed strictly: cursors and event keys."""

from __future__ import annotations

import pytest

from gateway.protocol import MAX_CURSOR, event_key, parse_cursor


@pytest.mark.parametrize("raw, cursor", [("0", 0), ("1", 1), ("42", 42), ("007", 7),
                                         (str(MAX_CURSOR), MAX_CURSOR)])
def test_a_cursor_is_ascii_digits_in_range(raw: str, cursor: int) -> None:
    assert parse_cursor(raw) == cursor


@pytest.mark.parametrize("raw", [
    "", "²", "\uff11", "\u0661", "1_000", "-1", "+1", " 1", "1 ", "1\n", "0x10", "1e3", "1.0",
    str(MAX_CURSOR + 1), "9" * 19, "9" * 5000, "abc"])
def test_anything_else_is_not_a_cursor(raw: str) -> None:
    assert parse_cursor(raw) is None


@pytest.mark.parametrize("msg_id, key", [("12", (12, 0)), ("12.1", (12, 1)),
                                         ("12.10", (12, 10)), (None, None), ("", None),
                                         ("x12", None), ("12.", None), ("12.1.2", None),
                                         ("\uff11", None), ("9" * 20, None)])
def test_event_keys_come_from_the_publishers_msg_ids(msg_id: str | None,
                                                     key: tuple[int, int] | None) -> None:
    assert event_key(msg_id) == key


def test_event_keys_order_as_the_projector_publishes() -> None:
    """Log order, then the index of each public event of one stored event."""
    ids = ["9", "10", "10.1", "10.2", "11"]
    keys = [event_key(i) for i in ids]
    assert keys == sorted(keys)  # type: ignore[type-var]
