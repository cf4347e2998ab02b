"""A batch of raw rows with lineage: what every source produces and the validator consumes.

A file chunk and a Kafka micro-batch look the same from here on. The frame holds:

- lineage columns (``ROW``, ``LINE``, ``RAW`` and, for Kafka, the message coordinates),
- ``MALFORMED`` / ``MALFORMED_MSG``: set when the row could not even be split into fields
  (bad CSV quoting, invalid UTF-8, a JSON line that does not parse...),
- one String column per input key holding the value's text (null when the key is absent), and
  for JSON sources a ``kind_column(key)`` UInt8 column saying which JSON type the value had.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import polars as pl

from engine.columns import (
    KAFKA_HEADERS,
    KAFKA_KEY,
    KAFKA_OFFSET,
    KAFKA_PARTITION,
    KAFKA_TIMESTAMP,
    KAFKA_TOPIC,
    KEYS,
    LINE,
    MALFORMED,
    MALFORMED_MSG,
    RAW,
    ROW,
    kind_column,
)

KAFKA_COLUMNS: dict[str, pl.DataType] = {
    KAFKA_TOPIC: pl.String(),
    KAFKA_PARTITION: pl.Int32(),
    KAFKA_OFFSET: pl.Int64(),
    KAFKA_KEY: pl.String(),
    KAFKA_TIMESTAMP: pl.Datetime("ms", "UTC"),
    KAFKA_HEADERS: pl.String(),
}


class Kind(IntEnum):
    """The type a value had in the input; CSV cells are always STR or ABSENT."""

    ABSENT = 0
    NULL = 1
    STR = 2
    INT = 3
    FLOAT = 4
    BOOL = 5
    OBJECT = 6
    ARRAY = 7


@dataclass(frozen=True)
class RawBatch:
    """Raw rows of one chunk. ``typed`` is True when values carry JSON kinds.

    ``python_inputs``, for rows held in memory (frames, dicts), gives what Pydantic is to see
    for a row number: the row itself rather than its JSON text (which has no dates...).
    ``columns``: the keys every row holds, in this order, when they are fixed (a frame's
    columns): the keys a model forbids are then known for the whole batch, with a token
    column each (``engine.sources.frame_values``)."""

    frame: pl.DataFrame
    keys: tuple[str, ...]
    typed: bool
    python_inputs: Callable[[int], Any] | None = None
    columns: tuple[str, ...] | None = None

    @property
    def height(self) -> int:
        return self.frame.height


__all__ = [
    "KAFKA_COLUMNS",
    "KEYS",
    "LINE",
    "LINEAGE_SCHEMA",
    "MALFORMED",
    "MALFORMED_MSG",
    "RAW",
    "ROW",
    "Kind",
    "RawBatch",
    "kind_column",
]

LINEAGE_SCHEMA: dict[str, pl.DataType] = {
    ROW: pl.Int64(),
    LINE: pl.Int64(),
    RAW: pl.String(),
    MALFORMED: pl.String(),
    MALFORMED_MSG: pl.String(),
}
