"""Closed micro-batches parsed together and split back, and stored with one append per table,
give each batch exactly what it gets alone (no broker): rows, errors, figures, offsets."""

from __future__ import annotations

import queue
import random
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Message
from polars.testing import assert_frame_equal
from pydantic import BaseModel, Field

from engine.batch import RawBatch
from engine.generate import generate
from engine.pipeline import prepare_schema, store_batch
from engine.sources.json_values import JsonValues
from engine.store import ddl
from engine.store.store import Store
from engine.streaming import workers
from engine.streaming.messages import messages_frame
from engine.streaming.together import parse_together
from engine.streaming.workers import BatchWorkers, ClosedBatch, ParsedBatch
from engine.validation.validate import BatchValidator, ValidationResult
from schemas.transactions import Transaction

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
# Lines Python's json reads differently from the fast path, or not at all: the rows the
# engine hands to Pydantic itself (``python_rows``), and malformed ones.
ODD = [
    b'{"external_id": "a", "external_id": "b", "amount": 1}',
    b'{"external_id": "x", "amount": 1e400, "currency": "USD"}',
    b'{"external_id": "y", "amount": 12345678901234567890123, "currency": "EUR"}',
    b'{"external_id": "z", "amount": "1_000"}',
    b"\xff\xfe not utf-8",
    b"",
    b"[1, 2]",
    b'{"external_id": "t", "amount": 3,}',
    b'{"external_id": "\\ud800", "amount": 3}',
    b"null",
]


def messages(tmp_path: Path, count: int, seed: int) -> list[Message]:
    data = tmp_path / "m.ndjson"
    generate(data, count, seed=seed, bad_fraction=0.3, fmt="ndjson")
    values: list[bytes | None] = [line for line in data.read_bytes().splitlines() if line]
    rng = random.Random(seed)
    for odd in [*ODD, None]:
        values.insert(rng.randrange(len(values)), odd)
    return [
        Message(
            topic="payments",
            partition=i % 3,
            offset=i // 3,
            value=value,
            timestamp=(TIMESTAMP_CREATE_TIME, 1_700_000_000_000 + i),
        )
        for i, value in enumerate(values)
    ]


def closed_batches(fetched: list[Message], seed: int) -> list[ClosedBatch]:
    rng, closed, start = random.Random(seed), [], 0
    while start < len(fetched):
        part = fetched[start : start + rng.choice([1, 2, 37, 250, 611])]
        closed.append(ClosedBatch(part, messages_frame(part), start + 1, 0.0))
        start += len(part)
    return closed


def assert_same(together: ParsedBatch, alone: ParsedBatch) -> None:
    assert together.closed is alone.closed
    assert together.offsets == alone.offsets
    a, b = together.validated, alone.validated
    assert a.tally == b.tally
    assert a.rules is b.rules
    for name in ("lineage", "kafka", "valid", "invalid"):
        left, right = getattr(a, name), getattr(b, name)
        # ``given`` is there when a violation of the frame validated gives its own parts
        # (null for the rows whose rules say everything): stored alike, as NULL.
        for frame, other in ((left, right), (right, left)):
            for column in set(frame.columns) - set(other.columns):
                assert column == "given" and frame.get_column(column).null_count() == len(frame)
        shared = [c for c in left.columns if c in right.columns]
        assert_frame_equal(left.select(shared), right.select(shared))


# Per seed: rows, valid, invalid, and those decided by Pydantic (every path is taken).
FIGURES = {1: [1511, 668, 843, 1], 2: [1511, 716, 795, 1], 3: [1511, 668, 843, 1]}


@pytest.mark.parametrize("seed", sorted(FIGURES))
def test_batches_parsed_together_get_what_each_gets_alone(tmp_path: Path, seed: int) -> None:
    fetched = messages(tmp_path, 1500, seed)
    closed = closed_batches(fetched, seed)
    with Store(tmp_path / "s.duckdb") as store:
        schema = prepare_schema(store, Transaction, typed=True, context={})
    validator = BatchValidator(schema, schema.input_keys)
    reader = JsonValues(schema.input_keys, want_all_keys=schema.extra == "forbid")
    try:
        alone = [parse_together(reader, validator, [c], NOW)[0] for c in closed]
        together: list[ParsedBatch] = []
        rng = random.Random(seed)
        start = 0
        while start < len(closed):
            group = closed[start : start + rng.randint(2, 4)]
            together += parse_together(reader, validator, group, NOW)
            start += len(group)
    finally:
        reader.close()
    assert len(together) == len(alone) == len(closed)
    for one, other in zip(together, alone, strict=True):
        assert_same(one, other)
    # The inputs reached every path: rows decided by Pydantic, valid and invalid ones.
    figures = [
        sum(getattr(p.validated.tally, k) for p in alone)
        for k in ("rows", "valid", "invalid", "python_rows")
    ]
    assert figures == FIGURES[seed]


def test_batches_stored_with_one_append_per_table_store_the_same_rows(tmp_path: Path) -> None:
    fetched = messages(tmp_path, 900, 4)
    closed = closed_batches(fetched, 4)
    tables = (ddl.SOURCE_ROWS, ddl.KAFKA_LINEAGE, "processed_data", ddl.INVALID_ROWS)
    stored: list[dict[str, list[tuple[object, ...]]]] = []
    for joined in (False, True):
        with Store(tmp_path / f"{joined}.duckdb") as store:
            schema = prepare_schema(store, Transaction, typed=True, context={})
            reader = JsonValues(schema.input_keys, want_all_keys=False)
            validator = BatchValidator(schema, schema.input_keys)
            parsed = [parse_together(reader, validator, [c], NOW)[0] for c in closed]
            reader.close()
            with store.transaction():
                if joined:
                    batch = workers._joined([p.validated for p in parsed])
                    assert batch is not None
                    store_batch(store, 1, batch)
                else:
                    for p in parsed:
                        store_batch(store, 1, p.validated)
            stored.append({t: store.rows(f"SELECT * FROM {t} ORDER BY row_number") for t in tables})
    assert stored[0] == stored[1]
    assert [len(stored[1][t]) for t in tables] == [911, 911, 418, 493]


def test_a_parser_takes_the_batches_waiting_in_order_up_to_the_row_limit() -> None:
    """Consecutive numbers (one parser takes at a time), never more than TOGETHER_ROWS
    rows, a batch that would pass it kept for the next take, and each stop ends one parser."""
    taker = BatchWorkers.__new__(BatchWorkers)
    taker._closed = queue.Queue()
    taker._taking = threading.Lock()
    taker._held = []
    sizes = [10_000, 10_000, 10_000, 10_000, 30_000, 40_000, 1, 1]
    for number, size in enumerate(sizes):
        frame = messages_frame([Message(value=b"{}")]).sample(size, with_replacement=True)
        taker._closed.put((number, ClosedBatch((), frame, 1, 0.0)))
    taker._closed.put(None)
    taker._closed.put(None)
    takes = []
    while True:
        jobs, stop = taker._take()
        takes.append(([number for number, _ in jobs], stop))
        if not jobs:
            break
    assert workers.TOGETHER_ROWS == 32_768
    assert takes == [
        ([0, 1, 2], False),
        ([3], False),  # 10,000 + 30,000 rows would pass the limit
        ([4], False),
        ([5], False),  # one batch alone may be larger
        ([6, 7], True),  # the first stop: this parser ends once it has parsed them
        ([], True),  # the second parser's
    ]


def test_a_parser_takes_large_messages_up_to_the_byte_limit() -> None:
    """Batches of large messages are taken together only up to TOGETHER_BYTES of frames."""
    taker = BatchWorkers.__new__(BatchWorkers)
    taker._closed = queue.Queue()
    taker._taking = threading.Lock()
    taker._held = []
    value = b'{"note": "' + b"x" * 100_000 + b'"}'
    frame = messages_frame([Message(value=value)] * 60)  # about 6 MB
    assert 5_000_000 < frame.estimated_size() < 7_000_000
    for number in range(5):
        taker._closed.put((number, ClosedBatch((), frame, 1, 0.0)))
    taker._closed.put(None)
    assert workers.TOGETHER_BYTES == 16 << 20
    assert [[n for n, _ in taker._take()[0]] for _ in range(3)] == [[0, 1], [2, 3], [4]]


def test_a_model_with_a_default_factory_gets_a_value_per_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A factory's value is made once per frame validated: batches parsed together get one
    each, as each parsed alone would (a shared one would, under a unique key, turn a batch's
    rows into duplicates of another's). They are still validated as one frame (they were
    parsed one by one before 2026-12-06, and the Kafka benchmark's model has a factory)."""
    made = iter(range(1, 100))
    frames: list[int] = []
    validate = BatchValidator.validate

    def counted(self: BatchValidator, batch: RawBatch, now: datetime) -> ValidationResult:
        frames.append(batch.frame.height)
        return validate(self, batch, now)

    monkeypatch.setattr(BatchValidator, "validate", counted)

    class Tagged(BaseModel):
        name: str
        tag: int = Field(default_factory=lambda: next(made))

    fetched = [Message(topic="t", partition=0, offset=i, value=b'{"name": "a"}') for i in range(9)]
    closed = [
        ClosedBatch(fetched[i : i + 3], messages_frame(fetched[i : i + 3]), i + 1, 0.0)
        for i in range(0, 9, 3)
    ]
    with Store(tmp_path / "s.duckdb") as store:
        schema = prepare_schema(store, Tagged, typed=True, context={})
    reader = JsonValues(schema.input_keys, want_all_keys=False)
    try:
        parsed = parse_together(reader, BatchValidator(schema, schema.input_keys), closed, NOW)
    finally:
        reader.close()
    assert [p.validated.valid.get_column("tag").to_list() for p in parsed] == [
        [1, 1, 1],
        [2, 2, 2],
        [3, 3, 3],
    ]
    assert frames == [9]


def test_a_parser_that_returns_too_few_batches_fails_the_session(tmp_path: Path) -> None:
    """Before, the count was checked outside the parser's error handling: its thread died,
    and the session waited for the batch for ever."""
    with Store(tmp_path / "s.duckdb") as store:
        team = BatchWorkers([lambda closed: []], store, 1, NOW, "g", None)
        frame = messages_frame([Message(value=b"{}")])
        team.submit(ClosedBatch((), frame, 1, 0.0))
        failed: list[BaseException] = []

        def drain() -> None:
            try:
                team.drain()
            except RuntimeError as exc:
                failed.append(exc)

        waiter = threading.Thread(target=drain, daemon=True)
        waiter.start()
        waiter.join(30)
        team.close(cancel=True)
    assert [str(exc) for exc in failed] == ["0 batches parsed of 1"]
