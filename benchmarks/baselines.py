"""The baselines of ``bench_ingest.py``, each run as its own process (imports included, as
for the engine's ``cli.py run``):

    python benchmarks/baselines.py duckdb FILE.csv DB
    python benchmarks/baselines.py dataframely FILE.csv DB

- ``duckdb``: DuckDB's bare load, ``CREATE TABLE t AS SELECT * FROM read_csv(FILE)``: types
  sniffed, no validation, no lineage, no error lists.
- ``dataframely``: Polars reads the file as text (as the engine does), dataframely filters it
  with the reference schema's rules (``cast=True``; amount > 0, currency allowed after upper-
  casing, timestamp not in the future), and DuckDB stores the valid rows and the invalid ones
  with dataframely's per-rule results (``FailureInfo.details()``): validate-and-store without
  the engine's lineage and Pydantic-exact error lists. dataframely needs
  ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import sys
from pathlib import Path

COLUMNS = ("external_id", "amount", "currency", "source_channel", "timestamp")


def duckdb_load(path: Path, db: Path) -> None:
    import duckdb

    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    con.execute("SET enable_progress_bar = false")
    con.execute("CREATE TABLE t AS SELECT * FROM read_csv(?)", [str(path)])
    con.close()


def dataframely_load(path: Path, db: Path) -> None:
    from datetime import UTC, datetime

    import dataframely as dy
    import duckdb
    import polars as pl

    from schemas.transactions import DEFAULT_CURRENCIES

    class TransactionSchema(dy.Schema):
        external_id = dy.String(nullable=False)
        amount = dy.Float64(nullable=False, min_exclusive=0.0)
        currency = dy.String(nullable=True)
        source_channel = dy.String(nullable=False)
        timestamp = dy.Datetime(nullable=True)

        @dy.rule()
        def currency_allowed(cls) -> pl.Expr:
            allowed = list(DEFAULT_CURRENCIES)
            return pl.col("currency").fill_null("USD").str.to_uppercase().is_in(allowed)

        @dy.rule()
        def not_in_future(cls) -> pl.Expr:
            now = datetime.now(UTC).replace(tzinfo=None)
            return pl.col("timestamp").is_null() | (pl.col("timestamp") <= now)

    db.unlink(missing_ok=True)
    text = pl.read_csv(path, schema=dict.fromkeys(COLUMNS, pl.String()))
    # Polars 2 casts no string to a datetime: parse it first (part of the work).
    parsed = text.with_columns(
        pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False)
    )
    result = TransactionSchema.filter(parsed, cast=True)
    valid = result.result  # noqa: F841 - read by DuckDB
    invalid = result.failure.details()  # noqa: F841 - read by DuckDB
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE processed AS SELECT * FROM valid")
    con.execute("CREATE TABLE invalid AS SELECT * FROM invalid")
    con.close()


BASELINES = {"duckdb": duckdb_load, "dataframely": dataframely_load}

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    name, csv_path, db_path = sys.argv[1:4]
    BASELINES[name](Path(csv_path), Path(db_path))
