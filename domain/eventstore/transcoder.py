"""Stored event state as JSON, read with orjson: the same bytes, decoded about 4x faster.

Events are written exactly as eventsourcing's `JSONTranscoder` writes them (UUIDs, datetimes
and decimals as `{"_type_": ..., "_data_": ...}`), so logs stay readable by either. Reading
parses with orjson and then revives the tagged values, bottom-up like the standard decoder's
object hook. Anything orjson refuses that `json` accepts (NaN, Infinity) is read by the
standard decoder, and so is any document with a number orjson made a float: it turns an
integer beyond 64 bits into one, losing digits. Our events hold no floats, so that fallback is
rare, and the result never depends on which parser ran.

Decoding is what a replay spends most of its time on after the database (a third of a
rebuild), and every aggregate load and live projector batch decodes too.
"""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)


class _Inexact(Exception):
    """A float in orjson's result: it may be an integer orjson could not hold exactly."""


_CONTAINERS_AND_FLOAT = frozenset({dict, list, float})


NUL_ESCAPE = b"\\u0000"  # how JSON writes U+0000: always escaped, never a raw byte
REPLACEMENT = "\ufffd"


def without_nul(value: Any) -> Any:
    """`value` with every U+0000 in its strings (keys too) replaced by U+FFFD."""
    kind = type(value)
    if kind is str:
        return value.replace("\0", REPLACEMENT)
    if kind is dict:
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if kind is list:
        return [without_nul(item) for item in value]
    return value


class FastJSONTranscoder(JSONTranscoder):
    """`JSONTranscoder` with an orjson reader; writing is unchanged.

    Reading also replaces U+0000 in strings by U+FFFD. Requests can no longer carry one, but
    older versions stored some, and PostgreSQL text and jsonb cannot hold it: such an event
    would stop every projection for good. Aggregates, projections, NATS payloads and replays
    all read events here, so they all agree on the replaced text.
    """

    def decode(self, data: bytes) -> Any:
        try:
            state = self._revive(orjson.loads(data))
        except (orjson.JSONDecodeError, _Inexact):
            state = super().decode(data)
        # a substring test is a fast scan of the bytes; the walk runs only for a rare hit
        return without_nul(state) if NUL_ESCAPE in data else state

    def _revive(self, value: Any) -> Any:
        kind = type(value)
        if kind is dict:
            for key, item in value.items():
                if type(item) in _CONTAINERS_AND_FLOAT:
                    value[key] = self._revive(item)
            if len(value) == 2 and "_type_" in value and "_data_" in value:
                return self._tagged(value["_type_"], value["_data_"])
            return value
        if kind is list:
            return [self._revive(item) if type(item) in _CONTAINERS_AND_FLOAT else item
                    for item in value]
        if kind is float:
            raise _Inexact
        return value

    def _tagged(self, name: Any, data: Any) -> Any:
        try:
            transcoding = self.names[name]
        except KeyError as exc:
            raise TranscodingNotRegisteredError(
                f"Data serialized with name '{name}' is not deserializable. Please register"
                " a custom transcoding for this type.") from exc
        return transcoding.decode(data)


def event_mapper() -> Mapper[Any]:
    """Stored events to domain events (upcast), as the application's own mapper reads them,
    for a reader that needs a few events and not an application (`GET /messages/{id}/history`)."""
    transcoder = FastJSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)
