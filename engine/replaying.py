"""``replay``: validate the stored raw text of invalid rows again, against the current model.

After a model is fixed (or the rows to retry are picked with ``where``), the invalid rows of
a run (or of every run) are read again from their raw text, exactly as their run read them
(a CSV run's header and dialect are recorded in ``ingestion_runs.read_options``; other
formats' raw text is a JSON record), and validated by the same path as a run
(``validate_batch``). The rows that now pass move into the model's typed table under their
original ``run_id`` and ``row_number``, in one transaction: their invalid-row record goes
to ``replayed_rows`` (with the replay that moved them), the replay is recorded in
``replays`` with the schema version that validated them (``row_versions`` names it for each
row), and the runs' ``rows_valid`` and ``rows_invalid`` are updated. Rows that still fail
keep their original errors. A unique key is checked as in a run: a replayed row whose key is
stored stays invalid. On a lake (``engine.lake.replay``) the same ``passing`` rows are
published as one batch.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from pydantic import BaseModel

from engine import interrupts
from engine.errors import ConfigError, SourceError, StoreError
from engine.lake.location import Lake
from engine.pipeline import prepare_schema, validate_batch
from engine.reports.selections import check_row_filter
from engine.sources.dialect import CsvDialect
from engine.sources.feeds import ReadOptions, prepare
from engine.sources.inputs import open_stream
from engine.store.ddl import ERRORS, INVALID_ROWS, RUNS, SOURCE_ROWS, quote
from engine.store.history import REPLAYED_ROWS, REPLAYS
from engine.store.store import Store
from engine.store.uniqueness import split_duplicates
from engine.validation.compiler import CompiledSchema
from engine.validation.validate import BatchValidator

CHUNK = 100_000  # invalid rows read, validated and moved at a time


@dataclass(frozen=True)
class ReplayResult:
    replay_id: int | None  # None when there was nothing to replay
    table: str
    runs: tuple[int, ...]
    checked: int
    moved: int
    by_run: Mapping[int, tuple[int, int]]  # run -> (checked, moved)
    unused_edits: int = 0  # rows of an edits file that are not invalid rows (left alone)

    @property
    def still_invalid(self) -> int:
        return self.checked - self.moved

    def as_json(self) -> dict[str, Any]:
        return {
            "replay_id": self.replay_id,
            "table": self.table,
            "runs": {str(k): {"checked": c, "moved": m} for k, (c, m) in self.by_run.items()},
            "rows_checked": self.checked,
            "rows_moved": self.moved,
            "rows_still_invalid": self.still_invalid,
            "edits_not_replayed": self.unused_edits,
        }


@dataclass(frozen=True)
class ReplayRun:
    run_id: int
    fmt: str
    read_options: Mapping[str, Any] | None


def replay(
    store: Store | Lake,
    model: type[BaseModel],
    *,
    runs: Sequence[int] | None = None,
    where: str | None = None,
    context: Mapping[str, Any] | None = None,
    edits: Mapping[tuple[int, int], str] | None = None,
) -> ReplayResult:
    """Re-validate the invalid rows of ``runs`` (None: of every completed run), those that
    ``where`` (SQL over ``ingestion_errors``: ``run_id``, ``row_number``, ``raw``, ``errors``)
    selects, and move the rows that pass into the model's table. ``edits`` (``(run_id,
    row_number) -> raw``, from an edited errors export: ``read_edits``) replays those rows
    only, each from its corrected text, which ``replayed_rows.raw`` keeps (the original
    stays in ``raw_data``). ``store`` may be a :class:`Lake` (``engine.lake.replay``)."""
    if where is not None:
        where = check_row_filter(where)
    if isinstance(store, Lake):
        from engine.lake.replay import replay_lake

        return replay_lake(store, model, runs=runs, where=where, context=context, edits=edits)
    store.refuse_if_new()
    context = dict(context or {})
    if edits is not None and runs is None:
        runs = sorted({run_id for run_id, _ in edits})
    chosen = _runs(store, runs)
    with store.writing():
        schemas = {
            typed: prepare_schema(store, model, typed=typed, context=context)
            for typed in {run.fmt != "csv" for run in chosen}
        }
    table = next(iter(schemas.values())).table if schemas else ""
    by_run: dict[int, tuple[int, int]] = {}
    replay_id: int | None = None
    try:
        with store.writing(), store.transaction():
            replay_id = int(store.rows("SELECT nextval('replay_ids')")[0][0])
            for run in chosen:
                schema = schemas[run.fmt != "csv"]
                mine = edits_of(edits, run.run_id)
                by_run[run.run_id] = _replay_run(store, schema, run, where, replay_id, mine)
            checked = sum(c for c, _ in by_run.values())
            moved = sum(m for _, m in by_run.values())
            if checked == 0:
                raise _Nothing
            store.execute(
                f"INSERT INTO {REPLAYS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    replay_id,
                    next(iter(schemas.values())).fingerprint,
                    table,
                    [run.run_id for run in chosen],
                    where,
                    datetime.now(UTC),
                    checked,
                    moved,
                ],
            )
            interrupts.committing()  # the command line holds a signal from here: kept
    except _Nothing:
        unused = len(edits) if edits is not None else 0
        return ReplayResult(None, table, tuple(r.run_id for r in chosen), 0, 0, by_run, unused)
    unused = len(edits) - checked if edits is not None else 0
    return ReplayResult(
        replay_id, table, tuple(r.run_id for r in chosen), checked, moved, by_run, unused
    )


class _Nothing(Exception):
    """No row to replay: the transaction is rolled back (the replay id is not used)."""


def _runs(store: Store, runs: Sequence[int] | None) -> list[ReplayRun]:
    if runs is None:
        rows = store.rows(
            f"SELECT run_id, format, read_options, status FROM {RUNS} WHERE run_id IN "
            f"(SELECT DISTINCT run_id FROM {INVALID_ROWS}) ORDER BY run_id"
        )
    else:
        rows = store.rows(
            f"SELECT run_id, format, read_options, status FROM {RUNS} WHERE run_id IN "
            "(SELECT unnest(?)) ORDER BY run_id",
            [list(runs)],
        )
        missing = sorted(set(runs) - {int(r[0]) for r in rows})
        if missing:
            raise StoreError(store.path, f"no run {missing[0]} in this database")
    return replayable(rows, store.path, skip=runs is None)


def edits_of(edits: Mapping[tuple[int, int], str] | None, run_id: int) -> dict[int, str] | None:
    """One run's corrected raw texts by row number (None: no edit file given)."""
    if edits is None:
        return None
    return {row: raw for (run, row), raw in edits.items() if run == run_id}


def replayable(rows: Sequence[Sequence[Any]], where: str | Path, *, skip: bool) -> list[ReplayRun]:
    """The runs of ``rows`` (run_id, format, read_options, status) whose rows can be replayed;
    a failed, running or deleted run is left out with ``skip`` (--all-failed), else refused."""
    chosen = []
    for run_id, fmt, options, status in rows:
        if status in ("failed", "running", "deleted"):
            if skip:
                continue
            raise StoreError(where, f"run {run_id} is {status}: it has no stored rows to replay")
        chosen.append(ReplayRun(int(run_id), str(fmt), json.loads(options) if options else None))
    return chosen


def _replay_run(
    store: Store,
    schema: CompiledSchema,
    run: ReplayRun,
    where: str | None,
    replay_id: int,
    edits: Mapping[int, str] | None,
) -> tuple[int, int]:
    checked = moved = 0
    for count, valid in passing(store, schema, run, where, edits):
        checked += count
        if valid.height == 0:
            continue
        if schema.unique:
            valid, _ = split_duplicates(
                store, schema.table, schema.unique, schema.unique_loc, run.run_id, valid
            )
        store.append(schema.table, valid, run_id=run.run_id)
        moved += valid.height
    if moved:
        _move_records(store, schema.table, run.run_id, replay_id, moved, edits)
    return checked, moved


def passing(
    store: Store,
    schema: CompiledSchema,
    run: ReplayRun,
    where: str | None,
    edits: Mapping[int, str] | None,
) -> Iterator[tuple[int, pl.DataFrame]]:
    """The run's invalid rows (``store``'s ``ingestion_errors``) validated again, a chunk at
    a time: (rows checked, the rows that pass, under their original ``row_number``), before
    the unique key is checked. Shared by both stores (``engine.lake.replay``)."""
    for found, stored in _invalid(store, run.run_id, where):
        if edits is None:
            rows, raws = found, stored
        else:
            rows = [row for row in found if row in edits]
            raws = [edits[row] for row in rows]
        if not rows:
            continue
        valid = _validate(schema, run, raws)
        if valid.height:
            originals = pl.Series("row_number", rows, pl.Int64)
            valid = valid.with_columns(originals.gather(valid["row_number"] - 1))
        yield len(rows), valid


def _invalid(store: Store, run_id: int, where: str | None) -> Iterator[tuple[list[int], list[str]]]:
    """The run's invalid rows (row numbers and raw text) that ``where`` selects, in chunks."""
    # ``where`` filters rows already limited to the run (it cannot widen that selection).
    rows = (
        f"(SELECT row_number, raw, errors FROM {ERRORS} WHERE run_id = $run AND row_number > $last)"
        if where
        else f"(SELECT row_number, raw FROM {INVALID_ROWS} JOIN {SOURCE_ROWS} "
        "USING (run_id, row_number) WHERE run_id = $run AND row_number > $last)"
    )
    condition = f" WHERE ({where})" if where else ""
    last = 0
    while True:
        try:
            found = store.rows(
                f"SELECT row_number, raw FROM {rows}{condition} ORDER BY row_number LIMIT $n",
                {"run": run_id, "last": last, "n": CHUNK},  # type: ignore[arg-type]
            )
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise ConfigError(f"--where {where!r} cannot select invalid rows ({first})") from exc
        if not found:
            return
        yield [int(r[0]) for r in found], [str(r[1]) for r in found]
        last = int(found[-1][0])


def _text(run: ReplayRun, raws: Sequence[str]) -> tuple[str, str, CsvDialect]:
    """The raw text as its run read it: (text, format, dialect)."""
    if run.fmt == "json":  # a JSON array's elements and Kafka messages may span lines
        return "[" + ",\n".join(raws) + "]\n", "json", CsvDialect()
    if run.fmt != "csv":
        return "\n".join(raws) + "\n", "ndjson", CsvDialect()
    options = run.read_options
    if options is None:
        raise ConfigError(
            f"run {run.run_id} was stored before CSV runs recorded their header and dialect: "
            "its raw text cannot be read again (ingest the file again with --force)"
        )
    dialect = CsvDialect(options["delimiter"], options["quote_char"])
    header = io.StringIO()
    csv.writer(
        header, delimiter=dialect.delimiter, quotechar=dialect.quote, lineterminator="\n"
    ).writerow(options["keys"])
    return header.getvalue() + "\n".join(raws) + "\n", "csv", dialect


def _validate(schema: CompiledSchema, run: ReplayRun, raws: Sequence[str]) -> pl.DataFrame:
    """The valid rows among ``raws``, ``row_number`` their 1-based position. Read together;
    when the records do not come back one per raw text (a stray quote that joins records),
    each is read alone."""
    valid = _read_and_validate(schema, run, raws)
    if valid is not None:
        return valid
    parts = []
    for position, raw in enumerate(raws, 1):
        alone = _read_and_validate(schema, run, [raw])
        if alone is not None and alone.height:
            parts.append(alone.with_columns(pl.lit(position, pl.Int64).alias("row_number")))
    return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()


def _read_and_validate(
    schema: CompiledSchema, run: ReplayRun, raws: Sequence[str]
) -> pl.DataFrame | None:
    text, fmt, dialect = _text(run, raws)
    read = ReadOptions(fmt, dialect, block_size=max(1 << 16, len(text) + 1))
    feed = prepare(open_stream(io.BytesIO(text.encode()), f"run {run.run_id}"), read)
    validator: BatchValidator | None = None
    frames, rows = [], 0
    try:
        source = feed.open(schema, read)
        for batch in source.batches():
            validator = validator or BatchValidator(schema, source.keys)
            done = validate_batch(validator, batch, datetime.now(UTC))
            rows += batch.height
            frames.append(done.valid.with_columns(pl.col("row_number").cast(pl.Int64)))
    except SourceError:  # a broken record that broke the text around it (a JSON array's)
        return None
    # Records only merge (a stray quote, an unclosed bracket) or split (a line end inside a
    # message): one record per raw text means each is where it was.
    if rows != len(raws) or source.blank_lines:
        return None
    return pl.concat(frames) if frames else pl.DataFrame()


def _move_records(
    store: Store,
    table: str,
    run_id: int,
    replay_id: int,
    moved: int,
    edits: Mapping[int, str] | None,
) -> None:
    """Move the invalid-row records of the rows now in ``table`` to ``replayed_rows``, with
    the corrected raw text of each edited row."""
    given = pl.DataFrame(
        {"row_number": list((edits or {}).keys()), "raw": list((edits or {}).values())},
        schema={"row_number": pl.Int64, "raw": pl.String},
    )
    edited = given.to_arrow()  # noqa: F841 - read by DuckDB (a replacement scan)
    with store.lock:
        store.con.execute(
            f"INSERT INTO {REPLAYED_ROWS} SELECT i.run_id, i.row_number, ?, i.rule_ids, "
            f"i.inputs, i.given, e.raw FROM {INVALID_ROWS} AS i "
            f"JOIN {quote(table)} AS t USING (run_id, row_number) "
            "LEFT JOIN edited AS e ON e.row_number = i.row_number WHERE i.run_id = ?",
            [replay_id, run_id],
        )
    store.execute(
        f"DELETE FROM {INVALID_ROWS} AS i USING {quote(table)} AS t "
        "WHERE i.run_id = t.run_id AND i.row_number = t.row_number AND i.run_id = ?",
        [run_id],
    )
    store.execute(
        f"UPDATE {RUNS} SET rows_valid = rows_valid + ?, rows_invalid = rows_invalid - ? "
        "WHERE run_id = ?",
        [moved, moved, run_id],
    )
