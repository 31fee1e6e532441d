"""Read-model rows in memory, and writing many of them at once.

A projection builds the rows its batch creates as named objects (a dataclass per table, its
fields the table's columns in order), changes them in memory while the batch goes on, and writes
them with one binary COPY at the end. The PostgreSQL type of each column, which binary COPY
needs, follows from the field's annotation, so the columns are written down once.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from dataclasses import fields, is_dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.types.json import Jsonb

COPY_TYPES: dict[Any, str] = {int: "int8", str: "text", bool: "bool",
                              datetime: "timestamptz", UUID: "uuid", Jsonb: "jsonb"}


class Table:
    """A read-model table whose rows are instances of the dataclass `row`."""

    def __init__(self, name: str, row: type) -> None:
        assert is_dataclass(row)
        hints = typing.get_type_hints(row)
        self.name = name
        self.columns = tuple(f.name for f in fields(row))
        self.types = tuple(_copy_type(hints[column]) for column in self.columns)
        self._values = attrgetter(*self.columns)  # several names: a tuple per row

    def copy(self, curs: Cursor[Any], rows: Iterable[Any]) -> None:
        """COPY the rows in binary format (nothing if there are none).

        Binary COPY costs about a quarter of the client CPU of text COPY (measured: 0.09 s
        against 0.38 s for 180,000 message rows).
        """
        rows = list(rows)
        if not rows:
            return
        values = self._values
        with curs.copy(f"COPY {self.name} ({', '.join(self.columns)}) FROM STDIN"
                       " (FORMAT BINARY)") as copy:
            copy.set_types(self.types)
            for row in rows:
                copy.write_row(values(row))


def _copy_type(hint: Any) -> str:
    """`int` is int8, `str | None` is text, and so on."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        [hint] = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return COPY_TYPES[hint]


def array_literal(values: Iterable[int | datetime]) -> str:
    """A PostgreSQL array literal of integers or timestamps, for `%s::bigint[]` and the like.

    Joining strings costs a fraction of psycopg's list dumping, which adapts element by
    element in Python (a tenth of a replay's CPU when used for `last_activity_at`).
    """
    return "{" + ",".join(v.isoformat() if isinstance(v, datetime) else str(v)
                          for v in values) + "}"
