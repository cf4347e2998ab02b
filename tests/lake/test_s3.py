"""A lake on S3 (moto's server on 127.0.0.1, reached with the standard AWS variables):
concurrent writers, readers, and the tables read back by Polars alone."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import polars as pl

from engine.generate import generate
from engine.lake.location import Lake
from tests.inprocess import run_cli
from tests.lake.conftest import CLI, ROOT, lake_rows, processes


def test_writers_at_once_on_s3_store_each_content_once(
    tmp_path: Path, s3_lake: tuple[Lake, dict[str, str]]
) -> None:
    lake, env = s3_lake
    first, second = tmp_path / "a.ndjson", tmp_path / "b.csv"
    generate(first, 1_500, seed=1, bad_fraction=0.25, fmt="ndjson")
    generate(second, 1_200, seed=2, bad_fraction=0.25)
    commands = [[*CLI, "run", str(f), "--lake", lake.uri, "--json"] for f in (first, first, second)]
    processes = [
        subprocess.Popen(
            c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
        )
        for c in commands
    ]
    outcomes = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], [err for _, err in outcomes]
    statuses = [json.loads(out)["status"] for out, _ in outcomes]
    assert sorted(statuses[:2]) == ["completed", "skipped"] and statuses[2] == "completed"
    assert lake_rows(
        lake,
        "SELECT source_path, rows_total, count(DISTINCT r.row_number) FROM ingestion_runs "
        "JOIN raw_data AS r USING (run_id) GROUP BY ALL ORDER BY 1",
    ) == [(str(first), 1_500, 1_500), (str(second), 1_200, 1_200)]
    valid, invalid = lake_rows(
        lake, "SELECT sum(rows_valid), sum(rows_invalid) FROM ingestion_runs"
    )[0]
    assert lake_rows(lake, "SELECT count(*) FROM processed_data") == [(valid,)]
    assert lake_rows(lake, "SELECT count(*) FROM ingestion_errors") == [(invalid,)]
    # Polars alone reads the same tables (the manifest decides which batches count).
    options = dict(lake.storage_options)
    manifest = pl.read_delta(lake.table_uri("ingestion_batches"), storage_options=options)
    committed = manifest.filter(pl.col("status") == "completed").select("run_id", "batch")
    raw = pl.scan_delta(lake.table_uri("raw_data"), storage_options=options).collect()
    assert raw.join(committed, on=["run_id", "batch"], how="semi").height == 2_700


def test_reading_an_s3_lake_from_the_cli(s3_lake: tuple[Lake, dict[str, str]]) -> None:
    lake, env = s3_lake
    sample = ROOT / "data" / "transactions_sample.csv"
    run = run_cli(["run", str(sample), "--lake", lake.uri, "-q"], env=env)
    assert run.returncode == 0, run.stderr
    for done in processes([[*CLI, "summary", "--json", "--lake", lake.uri]] * 5, env):
        assert (done.returncode, done.stderr) == (0, "")
        figures = json.loads(done.stdout)
        assert (figures["rows_total"], figures["rows_valid"], figures["rows_invalid"]) == (
            21,
            7,
            14,
        )


def test_a_query_that_stops_early_on_s3_exits_cleanly(
    tmp_path: Path, s3_lake: tuple[Lake, dict[str, str]]
) -> None:
    """Through delta-rs' default ``PyFileSystem``, ``LIMIT 1`` left arrow's read-ahead calling
    into Python, and 5 processes in 12 crashed (139) at exit; the reader now reads the files
    through pyarrow's own S3 client."""
    lake, env = s3_lake
    for n in range(3):
        source = tmp_path / f"part{n}.csv"
        generate(source, 300, seed=n, bad_fraction=0.25)
        assert run_cli(["run", str(source), "--lake", lake.uri, "-q"], env=env).returncode == 0
    query = [*CLI, "sql", "SELECT row_number FROM _lake_raw_data LIMIT 1", "--lake", lake.uri]
    for done in processes([[*query, "--format", "csv"]] * 8, env):
        assert (done.returncode, done.stdout.splitlines()[0], done.stderr) == (0, "row_number", "")
    assert lake_rows(lake, "SELECT count(*) FROM raw_data") == [(900,)]


def test_a_missing_bucket_is_one_line_with_what_to_check(
    s3_lake: tuple[Lake, dict[str, str]],
) -> None:
    """delta-rs says only "Generic S3 error" (and its AWS client logs warnings on stderr):
    the run fails with one line that says what to check."""
    _, env = s3_lake
    uri = "s3://no-such-bucket-anywhere/lake"
    sample = ROOT / "data" / "transactions_sample.csv"
    done = subprocess.run(
        [*CLI, "run", str(sample), "--lake", uri, "-q"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: {uri}: cannot read table ingestion_batches of the lake (Kernel error -> Generic S3 "
        "error) (check that the bucket exists and the AWS_* variables: AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_REGION, and AWS_ENDPOINT_URL for a server other than AWS)"
    ]
