"""The malformed-file corpus through the real CLI: no traceback, one line or every row.

Every file either stops its run with exactly one line naming it (exit code 2), or is
ingested with each data row stored exactly once, as many rows as the oracle counts (Python's
csv or json), and as many rows that cannot be split as the oracle finds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, query
from tests.sources.corpus import csv_cases, json_cases

CASES = csv_cases() + json_cases()
UNSPLIT = (
    "'csv_too_few_fields', 'csv_too_many_fields', 'csv_unterminated_quote', "
    "'csv_stray_quote', 'invalid_utf8', 'json_invalid'"
)


def cli_run(db: Path, paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "run", *map(str, paths), "--db", str(db), "-q"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpus")
    paths = {}
    for case in CASES:
        paths[case.name] = folder / case.name
        paths[case.name].write_bytes(case.content)
    return paths


def test_the_corpus_is_mostly_rows() -> None:
    """Most files have rows by their oracle: the corpus exercises rows, not only refusals."""
    assert len({case.name for case in CASES}) == len(CASES) == 40
    assert sum(case.refused is not None for case in CASES) == 10
    assert sum(bool(case.rows) for case in CASES) == 25


def test_files_that_cannot_be_read_stop_with_one_line(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    refused = [case for case in CASES if case.refused is not None]
    db = tmp_path / "refused.duckdb"
    done = cli_run(db, [corpus[case.name] for case in refused])
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        f"error: {corpus[case.name]}{case.refused}" for case in refused
    ]
    assert query(db, "SELECT count(*) FROM raw_data") == [(0,)]
    assert query(db, "SELECT count(*) FROM ingestion_runs WHERE status <> 'failed'") == [(0,)]


def test_every_row_of_the_readable_files_is_stored_once(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    readable = [case for case in CASES if case.refused is None]
    db = tmp_path / "readable.duckdb"
    done = cli_run(db, [corpus[case.name] for case in readable])
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    found = {
        Path(str(path)).name: (status, total, counted, raw, stored, unsplit)
        for path, status, total, counted, raw, stored, unsplit in query(
            db,
            "SELECT source_path, status, rows_total, rows_valid + rows_invalid, "
            "(SELECT count(*) FROM raw_data d WHERE d.run_id = r.run_id), "
            "(SELECT count(*) FROM processed_data p WHERE p.run_id = r.run_id) + "
            "(SELECT count(*) FROM ingestion_errors e WHERE e.run_id = r.run_id), "
            "(SELECT count(*) FROM ingestion_errors e WHERE e.run_id = r.run_id "
            f"AND errors[1].type IN ({UNSPLIT})) FROM ingestion_runs r",
        )
    }
    assert sorted(found) == sorted(case.name for case in readable)
    for case in readable:
        status, total, counted, raw, stored, unsplit = found[case.name]
        assert (status, counted, raw, stored) == ("completed", total, total, total), case.name
        if case.rows is not None:
            assert total == case.rows, case.name
        if case.unsplit is not None:
            assert unsplit == case.unsplit, case.name
