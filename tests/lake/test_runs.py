"""`run --lake` stores what `run --db` stores (same verdicts, lineage and figures), runs are
idempotent across processes, and readers count only committed batches."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from engine.generate import generate
from engine.lake import datasets, writer
from engine.lake.location import Lake
from tests.lake.conftest import CLI, ROOT, db_rows, lake_rows, processes

Cli = Callable[..., subprocess.CompletedProcess[str]]
SAMPLE = ROOT / "data" / "transactions_sample.csv"

TABLES = {
    "raw_data": "SELECT * EXCLUDE (run_id) FROM raw_data ORDER BY row_number",
    "ingestion_errors": "SELECT * EXCLUDE (run_id) FROM ingestion_errors ORDER BY row_number",
    "error_details": "SELECT * EXCLUDE (run_id) FROM error_details ORDER BY ALL",
    "processed_data": "SELECT * EXCLUDE (run_id) FROM processed_data ORDER BY row_number",
    "ingestion_runs": (
        "SELECT source_kind, source_path, format, schema_name, schema_fingerprint, "
        "target_table, content_hash, quick_hash, file_size, status, rows_total, rows_valid, "
        "rows_invalid, rows_python, blank_lines, message FROM ingestion_runs"
    ),
}


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_a_lake_run_stores_what_a_database_run_stores(tmp_path: Path, cli: Cli, fmt: str) -> None:
    data = tmp_path / f"tx.{fmt}"
    generate(data, 3_000, seed=7, bad_fraction=0.3, fmt=fmt)
    lake, db = Lake(str(tmp_path / "lake")), tmp_path / "x.duckdb"
    for target in (["--db", str(db)], ["--lake", lake.uri]):
        done = cli("run", str(data), "--json", *target)
        assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["status"] == "completed" and figures["rows_total"] == 3_000
    for name, query in TABLES.items():
        expected, found = db_rows(db, query), lake_rows(lake, query)
        assert found == expected, name
    assert len(expected) == 1
    run_id = lake_rows(lake, "SELECT run_id FROM ingestion_runs")[0][0]
    assert run_id == figures["run_id"]
    assert lake_rows(lake, "SELECT DISTINCT run_id FROM raw_data") == [(run_id,)]


def test_the_same_content_is_skipped_and_force_stores_it_again(tmp_path: Path, cli: Cli) -> None:
    lake = str(tmp_path / "lake")
    first = json.loads(cli("run", str(SAMPLE), "--lake", lake, "--json").stdout)
    again = cli("run", str(SAMPLE), "--lake", lake)
    assert again.returncode == 0
    assert again.stdout == (
        f"skipped {SAMPLE}: already ingested as run {first['run_id']} with the same schema; "
        "pass --force to ingest it again\n"
    )
    forced = json.loads(cli("run", str(SAMPLE), "--lake", lake, "--json", "--force").stdout)
    assert forced["status"] == "completed" and forced["run_id"] != first["run_id"]
    assert lake_rows(Lake(lake), "SELECT run_id, count(*) FROM raw_data GROUP BY 1 ORDER BY 1") == [
        (first["run_id"], 21),
        (forced["run_id"], 21),
    ]


def test_writers_at_once_store_every_row_once_and_a_shared_file_once(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    files = []
    for n in range(4):
        path = tmp_path / f"part{n}.csv"
        generate(path, 2_000 + n, seed=n, bad_fraction=0.2)
        files.append(path)
    lake = str(tmp_path / "lake")
    commands = [[*CLI, "run", str(f), "--lake", lake, "--json"] for f in files]
    commands += [[*CLI, "run", str(files[0]), "--lake", lake, "--json"]] * 2
    processes = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env)
        for c in commands
    ]
    outcomes = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0] * 6, [err for _, err in outcomes]
    results = [json.loads(out) for out, _ in outcomes]
    shared = [r for i, r in enumerate(results) if i == 0 or i >= 4]
    assert sorted(r["status"] for r in shared) == ["completed", "skipped", "skipped"]
    kept = next(r["run_id"] for r in shared if r["status"] == "completed")
    assert {r["previous_run"] for r in shared if r["status"] == "skipped"} == {kept}
    counted = lake_rows(
        Lake(lake),
        "SELECT source_path, count(*), count(DISTINCT row_number) FROM raw_data "
        "JOIN ingestion_runs USING (run_id) GROUP BY 1 ORDER BY 1",
    )
    assert counted == [(str(f), 2_000 + n, 2_000 + n) for n, f in enumerate(files)]
    assert lake_rows(Lake(lake), "SELECT count(*) FROM ingestion_runs") == [(4,)]


def test_readers_never_count_a_batch_whose_manifest_row_is_not_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine

    lake = Lake(str(tmp_path / "lake"))
    kept = engine.ingest(SAMPLE, db=lake, schema="transactions")

    def crash(*args: object, **kwargs: object) -> dict[str, int]:
        raise OSError("the writer died here")

    monkeypatch.setattr("engine.lake.runs.commit_batch", crash)
    with pytest.raises(OSError, match="the writer died here"):
        engine.ingest(SAMPLE, db=lake, schema="transactions", force=True)
    # The dead writer's rows are in the Delta tables, as orphans...
    stored = pl.scan_delta(lake.table_uri("raw_data")).select(pl.len()).collect().item()
    assert stored == 42
    # ...which no reader counts.
    assert lake_rows(lake, "SELECT run_id, count(*) FROM raw_data GROUP BY 1") == [
        (kept.run_id, 21)
    ]
    assert lake_rows(lake, "SELECT count(*) FROM processed_data") == [(7,)]
    assert lake_rows(lake, "SELECT count(*) FROM ingestion_errors") == [(14,)]
    assert lake_rows(lake, "SELECT count(*), sum(rows_total) FROM ingestion_runs") == [(1, 21)]
    assert writer.COMMIT_ATTEMPTS > 1


def test_a_reading_process_exits_cleanly_every_time(
    tmp_path: Path, cli: Cli, cli_env: dict[str, str]
) -> None:
    lake = str(tmp_path / "lake")
    assert cli("run", str(SAMPLE), "--lake", lake, "-q").returncode == 0
    query = [*CLI, "sql", "SELECT count(*) FROM raw_data", "--lake", lake, "--format", "csv"]
    for done in processes([query] * 10, cli_env):
        assert (done.returncode, done.stdout, done.stderr) == (0, "count_star()\n21\n", "")


def test_a_query_that_stops_early_exits_cleanly_every_time(tmp_path: Path, cli: Cli) -> None:
    """``LIMIT`` stops DuckDB's scan while arrow still reads ahead; through delta-rs' default
    ``PyFileSystem`` that read-ahead called back into Python and about one process in six hung
    or aborted (134) at exit. Several runs, so that each table has several files."""
    lake = str(tmp_path / "lake")
    data = SAMPLE.read_bytes()
    for n in range(4):
        source = tmp_path / f"part{n}.csv"
        source.write_bytes(data.replace(b"TXN-", f"P{n}-".encode()))
        assert cli("run", str(source), "--lake", lake, "-q").returncode == 0
    query = [*CLI, "sql", "SELECT row_number FROM _lake_raw_data LIMIT 1", "--lake", lake]
    for done in processes([[*query, "--format", "csv"]] * 16):
        assert (done.returncode, done.stdout.splitlines()[0], done.stderr) == (0, "row_number", "")


def test_a_local_lake_is_read_without_python_callbacks(tmp_path: Path, cli: Cli) -> None:
    lake = tmp_path / "lake"
    assert cli("run", str(SAMPLE), "--lake", str(lake), "-q").returncode == 0
    table = DeltaTable(str(lake / "raw_data"))
    dataset = datasets.dataset(Lake(str(lake)), "raw_data", table)
    assert type(dataset.filesystem).__name__ == "SubTreeFileSystem"
    assert dataset.to_table().num_rows == 21


def test_user_sql_on_a_lake_stays_locked_down(tmp_path: Path, cli: Cli) -> None:
    lake = str(tmp_path / "lake")
    assert cli("run", str(SAMPLE), "--lake", lake, "-q").returncode == 0
    refused = cli("sql", "SELECT * FROM read_text('/etc/hostname')", "--lake", lake)
    assert (refused.returncode, refused.stderr.strip()) == (
        2,
        "error: query refused: it reaches outside the database (/etc/hostname); only the "
        "database's own tables can be read (no other file, URL, database or extension)",
    )
    target = tmp_path / "out.csv"
    query = f"EXPLAIN ANALYZE COPY (SELECT * FROM raw_data) TO '{target}'"
    written = cli("sql", query, "--lake", lake)
    assert (written.returncode, written.stderr.strip()) == (
        2,
        "error: sql explains queries (SELECT, FROM ...) only, not COPY",
    )
    assert not target.exists()


def test_sql_on_a_lake_cannot_read_the_default_spill_directory(
    tmp_path: Path, cli: Cli, cli_env: dict[str, str]
) -> None:
    """An in-memory DuckDB spills into ``./.tmp``, which a locked-down connection may read:
    the lake's reader spills into a directory of its own under the system's temp instead."""
    lake = str(tmp_path / "lake")
    assert cli("run", str(SAMPLE), "--lake", lake, "-q").returncode == 0
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "planted.csv").write_text("secret\nfrom-the-working-directory\n")
    query = "SELECT * FROM read_csv('.tmp/planted.csv')"
    done = subprocess.run(
        [*CLI, "sql", query, "--lake", lake], capture_output=True, text=True, env=cli_env,
        cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr.strip()) == (
        2,
        "",
        "error: query refused: it reaches outside the database (.tmp/planted.csv); only the "
        "database's own tables can be read (no other file, URL, database or extension)",
    )
    # (`sql` refuses current_setting(): the reader itself, as the read commands make it)
    ((directory, memory),) = lake_rows(
        Lake(lake), "SELECT current_setting('temp_directory'), current_setting('memory_limit')"
    )
    spill = Path(str(directory))
    assert spill.parent == Path(tempfile.gettempdir()) / f"ingest-{os.getuid()}"
    assert spill.parent.stat().st_mode & 0o777 == 0o700  # the lake's rows: this user's only
    assert spill.name.startswith("ingest-lake.read-") and spill.name.endswith(".tmp")
    assert not spill.exists()
    # Capped like the readers of a database file (it had DuckDB's default: 80% of memory).
    assert memory == "488.2 MiB"


def test_reading_a_lake_that_is_not_there_is_one_line(tmp_path: Path, cli: Cli) -> None:
    done = cli("summary", "--lake", str(tmp_path / "nothing"))
    assert (done.returncode, done.stderr) == (
        2,
        f"error: {tmp_path / 'nothing'}: no lake here (it has no ingestion_batches table) "
        "(run an ingestion into it first, or pass another --lake)\n",
    )


def test_a_failed_run_is_recorded_as_on_a_database(tmp_path: Path, cli: Cli) -> None:
    bad = tmp_path / "dup.csv"
    bad.write_text("external_id,amount,amount\nA,1,2\n")
    lake, db = Lake(str(tmp_path / "lake")), tmp_path / "x.duckdb"
    outcomes = [
        cli("run", str(bad), "--json", *t) for t in (["--db", str(db)], ["--lake", lake.uri])
    ]
    assert [o.returncode for o in outcomes] == [2, 2]
    assert [o.stderr for o in outcomes] == [
        f"error: {bad}, line 1: duplicate column 'amount' in the header row\n"
    ] * 2
    lake_run = json.loads(outcomes[1].stdout)["run_id"]
    query = "SELECT status, message, rows_total FROM ingestion_runs"
    assert (
        lake_rows(lake, query)
        == db_rows(db, query)
        == [
            (
                "failed",
                f"SourceError: {bad}, line 1: duplicate column 'amount' in the header row",
                0,
            )
        ]
    )
    assert lake_rows(lake, "SELECT run_id FROM ingestion_runs") == [(lake_run,)]
    assert lake_rows(lake, "SELECT count(*) FROM raw_data") == [(0,)]
    assert lake_rows(lake, "SELECT count(*) FROM error_details") == [(0,)]


def test_staging_directories_of_dead_processes_are_removed(tmp_path: Path) -> None:
    from engine.lake.staging import Staging

    child = subprocess.Popen(["true"])
    child.wait()  # a pid that ran and is gone
    left = tmp_path / f"ingest-lake-{child.pid}-abc"
    (left / "x").mkdir(parents=True)
    mine = tmp_path / f"ingest-lake-{os.getpid()}-def"
    mine.mkdir()
    with Staging(Lake(str(tmp_path / "lake")), tmp_path) as staging:
        assert staging.directory.name.startswith(f"ingest-lake-{os.getpid()}-")
        assert not left.exists() and mine.exists()
    assert not staging.directory.exists()


def test_a_field_delta_cannot_hold_fails_the_run_with_one_line(tmp_path: Path, cli: Cli) -> None:
    model = tmp_path / "shifts.py"
    model.write_text(
        "from datetime import time\nfrom pydantic import BaseModel\n\n\n"
        "class Shift(BaseModel):\n    name: str\n    starts: time\n"
    )
    data = tmp_path / "shifts.csv"
    data.write_text("name,starts\na,09:00:00\nb,soon\n")
    lake = Lake(str(tmp_path / "lake"))
    done = cli("run", str(data), "--lake", lake.uri, "--schema", f"{model}:Shift")
    problem = (
        f"{lake.uri}: table 'shift': column 'starts' holds a time, which Delta Lake tables "
        "cannot hold (store it in a DuckDB file (--db), or make the field a str)"
    )
    assert (done.returncode, done.stderr) == (2, f"error: {problem}\n")
    assert lake_rows(lake, "SELECT status, message FROM ingestion_runs") == [
        ("failed", f"StoreError: {problem}")
    ]
    assert lake_rows(lake, "SELECT count(*) FROM raw_data") == [(0,)]


@pytest.mark.parametrize("command", ["run", "summary"])
def test_a_file_where_the_lake_should_be_is_one_line(tmp_path: Path, command: str) -> None:
    """A lake is a directory: a file in its place is bad usage (exit 2), before anything is
    read or written."""
    taken = tmp_path / "lake"
    taken.write_text("not a lake")
    sample = str(ROOT / "data" / "transactions_sample.csv")
    args = ["run", sample] if command == "run" else ["summary"]
    done = subprocess.run(
        [*CLI, *args, "--lake", str(taken)], cwd=ROOT, capture_output=True, text=True
    )
    assert (done.returncode, done.stderr) == (
        2,
        f"error: lake {taken}: not a directory (a lake is a directory of Delta tables)\n",
    )
    assert taken.read_text() == "not a lake"
