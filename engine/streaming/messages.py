"""Fetched Kafka messages as a RawBatch, ready for the same validate-and-store path as files.

A message's value decoded as UTF-8 is the row's raw text; its topic, partition, offset, key,
timestamp and headers are the row's lineage (``KAFKA_COLUMNS``). The JSON part is the file
reader's own (:func:`engine.sources.json.json_batch`), so a message and an NDJSON line with
the same bytes get the same verdict. Python touches each message only to read its fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from operator import itemgetter

import polars as pl
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from engine.batch import KAFKA_COLUMNS, LINE, MALFORMED, MALFORMED_MSG, RAW, RawBatch
from engine.columns import KAFKA_HEADERS as HEADERS
from engine.columns import KAFKA_KEY as KEY
from engine.columns import KAFKA_OFFSET as OFFSET
from engine.columns import KAFKA_PARTITION as PARTITION
from engine.columns import KAFKA_TIMESTAMP as TIMESTAMP
from engine.columns import KAFKA_TOPIC as TOPIC
from engine.sources.json import json_batch
from engine.sources.json_values import JsonValues

NO_VALUE = "Invalid JSON: the message has no value"

TopicPartitionKey = tuple[str, int]


def decode_utf8(values: Sequence[bytes | None]) -> tuple[pl.Series, pl.Series]:
    """Texts (null where there is no value) and, per value, why it is not UTF-8 (else null).

    One vectorized cast in the common case; only a batch holding a bad value is decoded
    value by value, the bad ones with their undecodable bytes shown as ``\\xNN`` escapes.
    """
    binary = pl.Series(values, dtype=pl.Binary)
    try:
        return binary.cast(pl.String), pl.repeat(None, len(values), dtype=pl.String, eager=True)
    except pl.exceptions.PolarsError:
        pass
    texts: list[str | None] = []
    errors: list[str | None] = []
    for value in values:
        if value is None:
            texts.append(None)
            errors.append(None)
            continue
        try:
            texts.append(value.decode("utf-8"))
            errors.append(None)
        except UnicodeDecodeError as exc:
            texts.append(value.decode("utf-8", errors="backslashreplace"))
            errors.append(
                f"Invalid UTF-8: byte 0x{value[exc.start]:02x} at position {exc.start} "
                "of the message"
            )
    return pl.Series(texts, dtype=pl.String), pl.Series(errors, dtype=pl.String)


HeaderValue = str | bytes | None
Headers = Mapping[str, HeaderValue] | Sequence[tuple[str, HeaderValue]]


def header_pairs(headers: Headers | None) -> list[tuple[str, HeaderValue]]:
    if headers is None:
        return []
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


def headers_json(headers: Headers) -> str:
    """Headers as a JSON array of ``[key, value]`` pairs: keys may repeat, order is kept."""
    pairs = [
        [
            key,
            value.decode("utf-8", errors="backslashreplace") if isinstance(value, bytes) else value,
        ]
        for key, value in header_pairs(headers)
    ]
    return json.dumps(pairs, ensure_ascii=False)


def messages_batch(messages: Sequence[Message], values: JsonValues, first_row: int) -> RawBatch:
    """The RawBatch of ``messages`` (all without error), rows numbered from ``first_row``."""
    return json_batch(messages_frame(messages), values, first_row)


def messages_frame(messages: Sequence[Message]) -> pl.DataFrame:
    """Raw text, lineage and the verdicts known before parsing (invalid UTF-8, no value).

    The only step that touches messages one by one (to read their fields, through ``map``
    of the unbound methods: no Python frame per message); the rest is columnar. Columns
    that are empty in the usual batch (keys, headers, verdicts) cost nothing then. Kept
    apart so that it can run on the thread that owns the messages.
    """
    n = len(messages)
    text, utf8_errors = decode_utf8(list(map(Message.value, messages)))
    keys = list(map(Message.key, messages))
    key_texts = decode_utf8(keys)[0] if keys.count(None) != n else _nulls(n, pl.String)
    stamps = list(map(Message.timestamp, messages))
    kinds = list(map(itemgetter(0), stamps))
    timestamps = pl.Series(list(map(itemgetter(1), stamps)), dtype=pl.Int64)
    if TIMESTAMP_NOT_AVAILABLE in kinds:
        available = pl.Series(kinds, dtype=pl.Int64) != TIMESTAMP_NOT_AVAILABLE
        timestamps = timestamps.zip_with(available, _nulls(1, pl.Int64))
    headers = list(map(Message.headers, messages))
    header_texts = (
        pl.Series([headers_json(h) if h else None for h in headers], dtype=pl.String)
        if any(headers)
        else _nulls(n, pl.String)
    )
    no_value = text.is_null()
    if utf8_errors.null_count() == n and not no_value.any():
        malformed, malformed_msg = _nulls(n, pl.String), _nulls(n, pl.String)
    else:
        malformed = pl.select(
            pl.when(utf8_errors.is_not_null())
            .then(pl.lit("invalid_utf8"))
            .when(no_value)
            .then(pl.lit("json_invalid"))
        ).to_series()
        malformed_msg = pl.select(
            pl.when(no_value).then(pl.lit(NO_VALUE)).otherwise(utf8_errors)
        ).to_series()
    return pl.DataFrame(
        {
            LINE: _nulls(n, pl.Int64),
            RAW: text,
            MALFORMED: malformed,
            MALFORMED_MSG: malformed_msg,
            TOPIC: pl.Series(list(map(Message.topic, messages)), dtype=pl.String),
            PARTITION: pl.Series(list(map(Message.partition, messages)), dtype=pl.Int32),
            OFFSET: pl.Series(list(map(Message.offset, messages)), dtype=pl.Int64),
            KEY: key_texts,
            TIMESTAMP: timestamps.cast(KAFKA_COLUMNS[TIMESTAMP]),
            HEADERS: header_texts,
        }
    )


def _nulls(n: int, dtype: pl.DataType | type[pl.DataType]) -> pl.Series:
    """``n`` nulls (``new_from_index`` takes a fifteenth of ``pl.repeat``'s time)."""
    return pl.Series([None], dtype=dtype).new_from_index(0, n) if n else pl.Series([], dtype=dtype)


def next_offsets(batch: RawBatch) -> dict[TopicPartitionKey, int]:
    """Per partition in the batch, the offset to resume from: its last offset plus one."""
    last = batch.frame.group_by(TOPIC, PARTITION).agg(pl.col(OFFSET).max())
    return {(topic, partition): offset + 1 for topic, partition, offset in last.iter_rows()}
