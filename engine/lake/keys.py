"""A unique key across a lake's runs: a file run's rows whose key the lake already shows are
invalid (``duplicate``), as on a DuckDB file.

A run checks its own rows as it is staged (``engine.store.uniqueness``); at publish, its
valid rows are checked again against the rows the lake shows (every generation of the table,
without the rows replaced), and those whose key is there move, in the staging file, from the
typed table to the invalid rows, with a ``duplicate`` error naming the stored row, and the
run's figures change with them. The run's own duplicates, which named the staged run, name
its lake run id (``name_run``).

Concurrency: the check reads one snapshot. The commit claims the table's key
(``lake-table-<name>``, ``engine.lake.modes``) at the version read before that snapshot plus
one, as replace, merge and replay runs do: of two runs appending the same key at once, one
commits and the other finds the claim moved on, checks again (now seeing the first one's
rows) and publishes again. So a key is stored once, whichever writers append it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import polars as pl

from engine.lake.location import Lake
from engine.lake.modes import table_app_id
from engine.lake.reader import open_lake_reader
from engine.lake.tables import MANIFEST, open_table
from engine.lake.writer import Claim
from engine.outcomes import Tally
from engine.store.ddl import INVALID_ROWS, RUNS, quote
from engine.store.store import Store
from engine.store.uniqueness import FIRST_ROW, FIRST_RUN, split_duplicates, stored_firsts
from engine.validation.compiler import CompiledSchema
from engine.validation.error_list import LOC, RULE, TYPE, count_violations, row_lists

FIRST = "first seen in run [0-9]+, row [0-9]+"  # how a duplicate names the row it repeats
PIECE = 100_000  # rows checked at a time


@dataclass(frozen=True)
class KeyCheck:
    """The claim a keyed append's commit must make, and the rows the check moved (their
    ``duplicate`` violations, by ``row_number``)."""

    claim: Claim
    duplicates: pl.DataFrame

    @property
    def moved(self) -> int:
        return self.duplicates.height

    def errors(self) -> Counter[tuple[str, str]]:
        return count_violations(self.duplicates, ())

    def moved_from(self, tally: Tally, first_row: int, last_row: int) -> Tally:
        """``tally``, of the rows ``first_row`` to ``last_row``, with their moved rows
        invalid."""
        rows = self.duplicates.filter(pl.col("row_number").is_between(first_row, last_row))
        n = rows.height
        errors = Counter(tally.errors)
        errors.update(count_violations(rows, ()))
        return Tally(tally.rows, tally.valid - n, tally.invalid + n, tally.python_rows, errors)


def check_stored_keys(
    lake: Lake,
    staging: Store,
    schema: CompiledSchema,
    staged_table: str,
    local_run: int,
    lake_table: str,
    named: int,
    where: str = "TRUE",
) -> KeyCheck:
    """Move the staged run's valid rows whose key the lake's ``lake_table`` shows to its
    invalid rows (a ``duplicate`` error each); returns the claim to commit with. ``named``:
    the run id the run's own duplicates name (``name_run``); ``where``: which of its rows
    (a condition on ``row_number``: a Kafka session's batch group)."""
    manifest = open_table(lake, MANIFEST)
    seen = (
        0 if manifest is None else int(manifest.transaction_version(table_app_id(lake_table)) or 0)
    )
    claim = Claim(table_app_id(lake_table), seen, seen + 1)
    none = KeyCheck(claim, pl.DataFrame())
    if manifest is None or open_table(lake, lake_table) is None:
        return none
    columns = ", ".join(quote(c) for c in schema.unique)
    keys = staging.frame(
        f"SELECT row_number, {columns} FROM {quote(staged_table)} "
        f"WHERE run_id = {int(local_run)} AND ({where}) ORDER BY row_number"
    )
    if keys.height == 0:
        return none
    moved: list[pl.DataFrame] = []
    reader = open_lake_reader(lake)
    try:
        if not reader.table_columns(lake_table):  # its files only, no committed run yet
            return none
        # The stored keys in one query; the violations in pieces (a run of a million rows
        # already stored made 1.0 GB of them at once). The run's keys are unique among its
        # valid rows: it checked them as it was staged.
        stored = stored_firsts(reader, lake_table, schema.unique, keys)
        if stored.height == 0:
            return none
        _repoint(staging, local_run, named, keys, stored)
        for start in range(0, keys.height, PIECE):
            _kept, duplicates = split_duplicates(
                reader, lake_table, schema.unique, schema.unique_loc, local_run,
                keys.slice(start, PIECE), stored,
            )  # fmt: skip
            if duplicates.height:
                _move(staging, staged_table, local_run, duplicates)
                moved.append(duplicates.select("row_number", RULE, TYPE, LOC))
    finally:
        reader.close()
    return KeyCheck(claim, pl.concat(moved)) if moved else none


def name_run(staging: Store, local_run: int, was: int, now: int) -> None:
    """The run's own duplicates name the run they were first seen in, their own: as staged,
    by the staging file's id (``was``); published, by the lake's (``now``)."""
    staging.execute(
        f"UPDATE {INVALID_ROWS} SET given = list_transform(given, lambda e: CASE WHEN "
        "e.type = 'duplicate' THEN struct_pack(\"type\" := e.type, loc := e.loc, "
        "msg := regexp_replace(e.msg, ?, ?)) ELSE e END) WHERE run_id = ? AND given IS NOT NULL",
        [
            f"first seen in run {int(was)}, row ([0-9]+)$",
            f"first seen in run {int(now)}, row \\1",
            local_run,
        ],
    )


def _repoint(
    staging: Store, local_run: int, named: int, keys: pl.DataFrame, stored: pl.DataFrame
) -> None:
    """The run's own duplicates of a row about to move name the stored row instead, as a
    DuckDB file's do (the stored key comes first)."""
    own = staging.rows(
        f"SELECT count(*) FROM {INVALID_ROWS} WHERE run_id = ? AND given[1].type = 'duplicate'",
        [local_run],
    )
    if not own[0][0]:
        return  # no duplicate within the run (at this point, all name the run itself)
    __first_rows__ = keys.join(stored, on=list(stored.columns[:-2])).select(  # noqa: F841
        "row_number",
        pl.format("first seen in run {}, row {}", FIRST_RUN, FIRST_ROW).alias("first"),
    )  # read by DuckDB by its name (no table's: a table named so would be read instead)
    message = "given[1].msg"
    with staging.lock:
        staging.con.execute(
            f"UPDATE {INVALID_ROWS} AS i SET given = [struct_pack(\"type\" := 'duplicate', "
            f"loc := i.given[1].loc, msg := regexp_replace(i.{message}, '{FIRST}$', "
            "m.first))] FROM __first_rows__ AS m WHERE i.run_id = ? AND i.given[1].type = "
            f"'duplicate' AND m.row_number = TRY_CAST(regexp_extract(i.{message}, "
            f"'first seen in run {int(named)}, row ([0-9]+)$', 1) AS BIGINT)",
            [local_run],
        )


def _move(staging: Store, staged_table: str, local_run: int, duplicates: pl.DataFrame) -> None:
    """The rows of ``duplicates`` out of the typed table, into the invalid rows, and the
    run's figures with them (in the caller's ``Tentative`` transaction)."""
    __moved_rows__ = duplicates.select("row_number").to_arrow()  # noqa: F841 - DuckDB's
    count = duplicates.height
    with staging.lock:
        staging.con.execute(
            f"DELETE FROM {quote(staged_table)} WHERE run_id = ? "
            "AND row_number IN (SELECT row_number FROM __moved_rows__)",
            [local_run],
        )
    staging.append(INVALID_ROWS, row_lists(duplicates, "row_number"), run_id=local_run)
    staging.execute(
        f"UPDATE {RUNS} SET rows_valid = rows_valid - ?, rows_invalid = rows_invalid + ? "
        "WHERE run_id = ?",
        [count, count, local_run],
    )


class Tentative:
    """A publish attempt's changes to its stage (the rows a key check moved, the run id its
    duplicates name): they stand only if the attempt's lake commit did (``keep``), else
    they are rolled back, and the next attempt checks the rows again as they were staged (a
    replace that won meanwhile may have removed the stored key). Holds the store's lock."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.kept = False

    def __enter__(self) -> Tentative:
        self.store.lock.acquire()
        try:
            self.store.con.begin()
        except BaseException:
            self.store.lock.release()
            raise
        return self

    def keep(self) -> None:
        self.kept = True

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        try:
            if self.kept and kind is None:
                self.store.con.commit()
            else:
                self.store.con.rollback()
        finally:
            self.store.lock.release()
