"""`run` for scripts, as a real process: stdin, compressed files, Parquet and Arrow, CSV
dialects, `--json`, the quality gate, `--schema package.module:Class`, environment variables,
and `export -o -`."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import polars as pl
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from engine.cli import main as cli_main
from engine.generate import generate
from tests.conftest import DATA, ROOT, query

SAMPLE = DATA / "transactions_sample.csv"


def cli(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[bytes]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args],
        input=stdin,
        capture_output=True,
        env=environment,
        cwd=cwd,
    )


def runs(db: Path) -> list[tuple[object, ...]]:
    return query(
        db,
        "SELECT run_id, status, source_path, format, rows_total, rows_invalid, content_hash, "
        "message FROM ingestion_runs ORDER BY run_id",
    )


def raw_lines(db: Path, run_id: int) -> list[str]:
    rows = query(db, f"SELECT raw FROM raw_data WHERE run_id = {run_id} ORDER BY row_number")
    return [str(row[0]) for row in rows]


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    path = tmp_path / "tx.csv"
    generate(path, 3_000, seed=11, bad_fraction=0.1)
    return path


def test_stdin_is_a_stream_named_stdin(plain: Path, db: Path) -> None:
    content = plain.read_bytes()
    done = cli("run", "-", "--db", str(db), "--format", "csv", stdin=content)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().startswith("run 1 stdin: 3,000 rows")
    [(run_id, status, source, fmt, total, _, digest, _)] = runs(db)
    assert (run_id, status, source, fmt, total) == (1, "completed", "stdin", "csv", 3_000)
    assert digest == hashlib.sha256(content).hexdigest()
    # The same bytes from the file: recognised as the same content.
    again = cli("run", str(plain), "--db", str(db))
    assert again.stdout.decode().startswith(f"skipped {plain}: already ingested as run 1")
    assert again.stdout.decode().rstrip().endswith("pass --force to ingest it again")


def test_stdin_format_is_sniffed_where_it_can_be(db: Path) -> None:
    ndjson = (DATA / "transactions_sample.ndjson").read_bytes()
    done = cli("run", "-", "--db", str(db), stdin=ndjson)
    assert done.returncode == 0, done.stderr
    assert runs(db)[0][2:5] == ("stdin", "ndjson", 15)
    csv = cli("run", "-", "--db", str(db), stdin=SAMPLE.read_bytes())
    assert csv.returncode == 2
    assert csv.stderr.decode().strip() == (
        "error: stdin: cannot tell the format (no extension, and the first bytes do not show "
        "it) (pass --format csv|ndjson|json|parquet|arrow)"
    )


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
    ".zst": lambda data: pa.Codec("zstd").compress(data, asbytes=True),
}


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
def test_compressed_files_by_extension_and_by_magic(
    tmp_path: Path, plain: Path, db: Path, suffix: str
) -> None:
    """The lineage is the decompressed records, the content hash that of the decompressed
    bytes: the plain file is then the same content. Without an extension (a pipe, stdin)
    the magic bytes tell the compression."""
    content = plain.read_bytes()
    packed = tmp_path / f"tx.csv{suffix}"
    half = len(content) // 2  # two members or frames, as `cat a.gz b.gz` makes
    cut = content.index(b"\n", half) + 1
    packed.write_bytes(COMPRESSORS[suffix](content[:cut]) + COMPRESSORS[suffix](content[cut:]))
    done = cli("run", str(packed), "--db", str(db))
    assert done.returncode == 0, done.stderr
    [(_, status, _, fmt, total, _, digest, _)] = runs(db)
    assert (status, fmt, total, digest) == (
        "completed",
        "csv",
        3_000,
        hashlib.sha256(content).hexdigest(),
    )
    assert raw_lines(db, 1) == content.decode().splitlines()[1:]
    assert cli("run", str(plain), "--db", str(db)).stdout.decode().startswith("skipped")
    piped = cli("run", "-", "--db", str(db), "--format", "csv", stdin=packed.read_bytes())
    assert piped.stdout.decode().startswith("skipped stdin: already ingested as run 1")


def test_a_corrupt_compressed_file_is_one_line(tmp_path: Path, plain: Path, db: Path) -> None:
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(gzip.compress(plain.read_bytes())[:-100])
    garbage = tmp_path / "bad.csv.gz"
    garbage.write_bytes(b"\x1f\x8bnot gzip at all")
    for path, problem in (
        (truncated, "the gzip data ends before its end marker (a truncated file?)"),
        (garbage, "not valid gzip data (Unknown compression method)"),
    ):
        done = cli("run", str(path), "--db", str(db))
        assert done.returncode == 2
        assert done.stderr.decode().strip() == f"error: {path}: {problem}"
    # The truncated file fails once its run has started (recorded, no rows kept); the other
    # one when its first bytes are read to tell its format, before any run.
    assert [(r[1], r[2], r[4]) for r in runs(db)] == [("failed", str(truncated), 0)]


def test_parquet_and_arrow_rows_are_json_records(tmp_path: Path, db: Path) -> None:
    frame = pl.DataFrame(
        {
            "external_id": ["T1", "T2", None],
            "amount": [10.5, -3.0, 7.0],
            "currency": ["USD", "EUR", "USD"],
            "source_channel": ["C1", "C2", "C3"],
            "timestamp": ["2024-01-01T00:00:00", "2024-01-02T00:00:00", "2024-01-03T00:00:00"],
        }
    )
    frame.write_parquet(tmp_path / "tx.parquet", row_group_size=2)
    feather.write_feather(frame.to_arrow(), str(tmp_path / "tx.arrow"))
    done = cli("run", str(tmp_path / "tx.parquet"), "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in raw_lines(db, 1)] == frame.to_dicts()
    assert raw_lines(db, 1)[0] == (
        '{"external_id":"T1","amount":10.5,"currency":"USD","source_channel":"C1",'
        '"timestamp":"2024-01-01T00:00:00"}'
    )
    # The same rows in another layout are the same content: as Arrow, and as the NDJSON
    # file of their lineage (whose fingerprint is its bytes' own).
    arrow = cli("run", str(tmp_path / "tx.arrow"), "--db", str(db))
    assert arrow.stdout.decode().startswith(f"skipped {tmp_path / 'tx.arrow'}: already")
    frame.write_ipc(tmp_path / "polars.arrow")  # messages laid out as Polars writes them
    polars_file = cli("run", str(tmp_path / "polars.arrow"), "--db", str(db))
    assert polars_file.stdout.decode().startswith(f"skipped {tmp_path / 'polars.arrow'}: already")
    (tmp_path / "tx.ndjson").write_text("".join(line + "\n" for line in raw_lines(db, 1)))
    text = cli("run", str(tmp_path / "tx.ndjson"), "--db", str(db))
    assert text.stdout.decode().startswith(f"skipped {tmp_path / 'tx.ndjson'}: already")
    stream = tmp_path / "tx.bin"
    with (
        pa.OSFile(str(stream), "wb") as sink,
        pa.ipc.new_stream(sink, frame.to_arrow().schema) as w,
    ):
        w.write_table(frame.to_arrow())
    piped = cli("run", "-", "--db", str(db), stdin=stream.read_bytes())
    assert piped.stdout.decode().startswith("skipped stdin")
    parquet = cli("run", "-", "--db", str(db), stdin=(tmp_path / "tx.parquet").read_bytes())
    assert parquet.returncode == 2
    assert parquet.stderr.decode().strip() == (
        "error: stdin: a Parquet file is read with seeks (its index is at its end), which a "
        "pipe or stdin cannot give (give the file's path, or an s3:// or http(s):// URL)"
    )
    assert [(r[1], r[3], r[4], r[5]) for r in runs(db)] == [
        ("completed", "parquet", 3, 2),
        ("failed", "parquet", 0, 0),
    ]


def test_a_fixed_offset_time_zone_is_one_line(tmp_path: Path, db: Path) -> None:
    """Arrow allows a fixed UTC offset as a timestamp's time zone; Polars does not read it."""
    from datetime import datetime

    import pyarrow.parquet as pq

    stamps = pa.array([datetime(2024, 1, 1, 12)], type=pa.timestamp("s", tz="+05:30"))
    table = pa.table({"external_id": ["T1"], "timestamp": stamps})
    pq.write_table(table, tmp_path / "tz.parquet")
    feather.write_feather(table, str(tmp_path / "tz.arrow"))
    for name in ("tz.parquet", "tz.arrow"):
        done = cli("run", str(tmp_path / name), "--db", str(db))
        assert done.returncode == 2
        assert done.stderr.decode().strip() == (
            f"error: {tmp_path / name}, column 'timestamp': its timestamps are in the time zone "
            "'+05:30', which Polars cannot hold (it reads named zones only) (write the column "
            "in UTC or in a named time zone)"
        )
    assert [(r[1], r[3], r[4]) for r in runs(db)] == [
        ("failed", "parquet", 0),
        ("failed", "arrow", 0),
    ]


def test_a_latin1_semicolon_file(tmp_path: Path, db: Path) -> None:
    text = (
        "external_id;amount;currency;source_channel;timestamp\n"
        "Café-1;12,5;EUR;Crème;2024-01-01T00:00:00\n"
        "Café-2;12.5;EUR;Crème;2024-01-01T00:00:00\n"
    )
    path = tmp_path / "latin.csv"
    path.write_bytes(text.encode("latin-1"))
    wrong = cli("run", str(path), "--db", str(db))
    assert wrong.returncode == 2
    assert wrong.stderr.decode().strip() == (
        f"error: {path}, line 1: no column of the header matches the model (it reads "
        "external_id, amount, currency, source_channel, timestamp) (is the delimiter ';'? "
        "pass --delimiter ';')"
    )
    done = cli("run", str(path), "--db", str(db), "--delimiter", ";", "--encoding", "latin-1")
    assert done.returncode == 0, done.stderr
    assert raw_lines(db, 2) == text.splitlines()[1:]
    assert query(db, "SELECT external_id, source_channel FROM processed_data") == [
        ("Café-2", "Crème")
    ]


def test_json_prints_one_object_per_run_and_nothing_else(
    tmp_path: Path, plain: Path, db: Path
) -> None:
    missing = tmp_path / "missing.csv"
    done = cli("run", str(plain), str(missing), str(plain), "--db", str(db), "--json")
    assert done.returncode == 2
    objects = [json.loads(line) for line in done.stdout.decode().splitlines()]
    first, absent, again = objects
    assert set(first) == {
        "run_id",
        "status",
        "source",
        "format",
        "rows_total",
        "rows_valid",
        "rows_invalid",
        "rows_python",
        "duration_s",
        "rows_per_s",
        "top_errors",
        "quality_gate",
        "previous_run",
        "message",
    }
    stored = query(db, "SELECT rows_valid, rows_invalid, duration_s FROM ingestion_runs")
    assert (first["run_id"], first["status"], first["source"], first["format"]) == (
        1,
        "completed",
        str(plain),
        "csv",
    )
    assert (first["rows_total"], first["rows_valid"], first["rows_invalid"]) == (
        3_000,
        stored[0][0],
        stored[0][1],
    )
    assert first["duration_s"] == round(float(stored[0][2]), 6)  # type: ignore[arg-type]
    errors = query(
        db,
        "SELECT loc, type, count(DISTINCT row_number) AS n FROM error_details "
        "GROUP BY ALL ORDER BY n DESC, loc, type",
    )
    assert first["top_errors"] == [{"field": loc, "type": t, "count": n} for loc, t, n in errors]
    assert first["quality_gate"] == "passed"
    assert absent == {
        "run_id": None,
        "status": "failed",
        "source": str(missing),
        "error": f"{missing}: no such file",
        "exit_code": 2,
    }
    assert (again["status"], again["run_id"], again["previous_run"]) == ("skipped", None, 1)
    assert again["message"] == (
        "already ingested as run 1 with the same schema; pass --force to ingest it again"
    )
    assert done.stderr.decode().strip() == f"error: {missing}: no such file"


def test_quality_gate_stores_the_run_and_exits_1(plain: Path, db: Path) -> None:
    over = cli("run", str(plain), "--db", str(db), "--max-invalid-rate", "0.05", "--json")
    assert over.returncode == 1, over.stderr
    result = json.loads(over.stdout)
    invalid = result["rows_invalid"]
    assert invalid == 1_197  # Transaction.model_validate on each row of the seed-11 file
    rate = invalid / 3_000
    message = f"quality gate failed: {rate:.2%} of rows invalid, more than the 5.00% allowed"
    assert (result["status"], result["quality_gate"], result["message"]) == (
        "completed",
        "failed",
        message,
    )
    [(run_id, status, *_rest, stored_message)] = runs(db)
    assert (run_id, status, stored_message) == (1, "completed", message)
    assert query(db, "SELECT count(*) FROM raw_data") == [(3_000,)]
    # Under the gate: exit 0, nothing marked. The count is checked too.
    under = cli("run", str(plain), "--db", str(db), "--force", "--max-invalid", str(invalid))
    assert under.returncode == 0, under.stderr
    over_count = cli("run", str(plain), "--db", str(db), "--force", "--max-invalid", "5")
    assert over_count.returncode == 1
    # The summary line (with its timing), the gate's line, then the top errors table.
    lines = over_count.stdout.decode().splitlines()
    assert lines[1] == (
        "  quality gate failed: 1,197 invalid rows, more than the 5 allowed (the run is stored)"
    )
    assert [line for line in lines if "quality gate" in line] == [lines[1]]
    assert [r[7] for r in runs(db)][1:] == [
        None,
        f"quality gate failed: {invalid:,} invalid rows, more than the 5 allowed",
    ]


def test_a_quiet_run_over_the_gate_says_why_on_stderr(plain: Path, db: Path) -> None:
    """--quiet printed nothing at all, and the exit code 1 came with no reason (independent
    review); the line goes to stderr, as errors do."""
    quiet = cli("run", str(plain), "--db", str(db), "--quiet", "--max-invalid", "5")
    assert (quiet.returncode, quiet.stdout.decode(), quiet.stderr.decode()) == (
        1,
        "",
        f"error: {plain}: quality gate failed: 1,197 invalid rows, more than the 5 allowed "
        "(the run is stored)\n",
    )
    again = cli("run", str(plain), "--db", str(db), "--quiet", "--force")
    assert (again.returncode, again.stdout, again.stderr) == (0, b"", b"")


def test_a_rate_that_is_not_a_number_is_a_usage_error(plain: Path, db: Path) -> None:
    """nan passed click's range check and failed each input instead, once per file."""
    done = cli("run", str(plain), str(plain), "--db", str(db), "--max-invalid-rate", "nan")
    assert done.returncode == 2
    assert done.stderr.decode().splitlines()[-1] == (
        "Error: Invalid value for '--max-invalid-rate' (env var: 'INGEST_MAX_INVALID_RATE'): "
        "nan is not a number between 0 and 1"
    )
    assert not db.exists()


def test_a_locked_database_gives_each_input_its_json_object(plain: Path, db: Path) -> None:
    """--json printed nothing on stdout when the database was locked (independent review)."""
    import duckdb

    assert cli("run", str(plain), "--db", str(db), "--quiet").returncode == 0
    holder = duckdb.connect(str(db))
    try:
        done = cli("run", str(plain), "-", "--db", str(db), "--json", "--force")
    finally:
        holder.close()
    error = (
        f"{db}: database is locked by process {os.getpid()} (wait for it to finish or stop it, "
        "or use another --db file)"
    )
    assert done.returncode == 2
    assert [json.loads(line) for line in done.stdout.decode().splitlines()] == [
        {"run_id": None, "status": "failed", "source": source, "error": error, "exit_code": 2}
        for source in (str(plain), "stdin")
    ]
    assert done.stderr.decode() == f"error: {error}\n"


def test_every_option_of_run_consume_and_serve_has_an_environment_variable() -> None:
    for name in ("run", "consume", "serve"):
        command = cli_main.get_command(click.Context(cli_main), name)
        assert command is not None
        for param in command.params:
            if not isinstance(param, click.Option) or param.name == "help":
                continue
            assert isinstance(param.envvar, list), (name, param.name)
            expected = "INGEST_" + param.opts[0].removeprefix("--").replace("-", "_").upper()
            assert param.envvar[0] == expected, (name, param.opts)
            assert param.show_envvar, (name, param.opts)
    shown = cli("run", "--help").stdout.decode()
    assert "env var: INGEST_MAX_INVALID_RATE" in shown
    assert "env var: INGEST_DB, ENGINE_DB" in shown


def test_options_from_the_environment(tmp_path: Path, plain: Path) -> None:
    db = tmp_path / "env.duckdb"
    semi = tmp_path / "semi.txt"
    semi.write_text(plain.read_text().replace(",", ";"))
    env = {
        "INGEST_DB": str(db),
        "INGEST_FORMAT": "csv",
        "INGEST_DELIMITER": ";",
        "INGEST_MAX_INVALID": "0",
        "INGEST_JSON": "1",
    }
    done = cli("run", str(semi), env=env)
    assert done.returncode == 1, done.stderr  # over the gate of 0 invalid rows
    assert json.loads(done.stdout)["rows_total"] == 3_000
    assert runs(db)[0][1:5] == ("completed", str(semi), "csv", 3_000)
    # The command line wins over the environment.
    assert cli("run", str(semi), "--max-invalid", "3000", "--force", env=env).returncode == 0


MODELS = """\
from pydantic import BaseModel, Field


class Reading(BaseModel):
    sensor: str
    value: float = Field(ge=0)


class Other(BaseModel):
    x: int
"""


def test_schema_as_package_module_class(tmp_path: Path, db: Path) -> None:
    package = tmp_path / "acme"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(MODELS)
    data = tmp_path / "r.csv"
    data.write_text("sensor,value\na,1.5\nb,-1\n")
    done = cli("run", str(data), "--db", str(db), "--schema", "acme.models:Reading", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert query(db, "SELECT sensor, value FROM reading") == [("a", 1.5)]
    wrong = cli("run", str(data), "--db", str(db), "--schema", "acme.models:Nope", cwd=tmp_path)
    assert wrong.returncode == 2
    assert wrong.stderr.decode().strip() == (
        "error: schema acme.models:Nope: no Pydantic model named 'Nope' in module acme.models "
        "(its models: Other, Reading)"
    )
    missing = cli("run", str(data), "--db", str(db), "--schema", "acme.nothing:X", cwd=tmp_path)
    assert missing.stderr.decode().startswith("error: schema acme.nothing:X: not found")


def test_export_to_stdout(tmp_path: Path, db: Path) -> None:
    assert cli("run", str(SAMPLE), "--db", str(db)).returncode == 0
    to_file = tmp_path / "errors.csv"
    assert cli("export", "errors", "-o", str(to_file), "--db", str(db), "-q").returncode == 0
    piped = cli("export", "errors", "-o", "-", "--format", "csv", "--db", str(db))
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == to_file.read_bytes()
    assert piped.stderr == b""
    parquet = cli("export", "processed", "-o", "-", "--format", "parquet", "--db", str(db))
    assert pl.read_parquet(parquet.stdout).height == 7
    guess = cli("export", "errors", "-o", "-", "--db", str(db))
    assert guess.returncode == 2
    assert guess.stderr.decode().strip() == (
        "error: cannot tell the export format of stdout "
        "(pass --format csv|json|ndjson|parquet|xlsx)"
    )


def test_a_cell_longer_than_max_record_bytes_is_one_line_and_the_option_reads_it(
    tmp_path: Path, db: Path
) -> None:
    cell = "A note\nover lines\n" * 40  # 760 bytes in a quoted cell spanning 80 lines
    path = tmp_path / "notes.csv"
    path.write_text(
        "external_id,amount,currency,source_channel,timestamp\r\n"
        f'TXN-1,5.0,USD,"{cell}",2024-01-01T00:00:00\r\n'
        "TXN-2,6.0,USD,web,2024-01-01T00:00:00\r\n"
    )
    short = cli("run", str(path), "--db", str(db), "--max-record-bytes", "512")
    assert short.returncode == 2
    assert short.stderr.decode().strip() == (
        f"error: {path}, line 2: a record runs on across lines for more than 512 bytes (a "
        "quote or bracket that never closes, or a cell longer than that) (raise "
        "--max-record-bytes if the file is right)"
    )
    assert query(db, "SELECT count(*) FROM raw_data") == [(0,)]
    done = cli("run", str(path), "--db", str(db), "--max-record-bytes", "1024")
    assert done.returncode == 0, done.stderr
    assert query(db, "SELECT external_id, source_channel FROM processed_data ORDER BY 1") == [
        ("TXN-1", cell),
        ("TXN-2", "web"),
    ]


def test_a_codec_that_is_no_text_encoding_is_one_line(db: Path) -> None:
    done = cli("run", str(DATA / "transactions_sample.csv"), "--db", str(db), "--encoding", "rot13")
    assert (done.returncode, done.stderr.decode()) == (
        2,
        "error: 'rot13' is not a text encoding (it transforms bytes or text, as codecs' rot13 "
        "and base64 do)\n",
    )


def test_a_closed_stdin_is_one_line(db: Path) -> None:
    """Started with stdin closed (``<&-``), ``run -`` printed a traceback (independent attack)."""
    done = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" cli.py run - --format csv --db "{db}" <&-'],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        b"",
        b"error: stdin: stdin is closed: there is nothing to read\n",
    )


@pytest.mark.parametrize("suffix", ["parquet", "arrow"])
def test_a_column_named_twice_in_a_columnar_file_is_one_line(
    tmp_path: Path, db: Path, suffix: str
) -> None:
    """A Parquet or Arrow file may repeat a column name (a CSV header may not): one line,
    as for a CSV header, where it was a Polars traceback (independent attack)."""
    table = pa.table(
        [pa.array(["T1"]), pa.array([1.5]), pa.array([2.5])], ["external_id", "amount", "amount"]
    )
    path = tmp_path / f"dup.{suffix}"
    if suffix == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        feather.write_feather(table, path, compression="uncompressed")
    done = cli("run", str(path), "--db", str(db))
    assert (done.returncode, done.stdout, done.stderr.decode()) == (
        2,
        b"",
        f"error: {path}, column 'amount': more than one column is named 'amount' (rename the "
        "columns so that each name is used once)\n",
    )


def test_a_uuid_column_is_read_as_the_uuids_text(tmp_path: Path, db: Path) -> None:
    """DuckDB writes a UUID column to Parquet as Arrow's UUID type (16 bytes each): the rows
    held the bytes and their lineage showed them escaped, so `replay` could not read them
    back (independent attack). They are the UUIDs' text now, for the run and the lineage."""
    import duckdb

    path = tmp_path / "ids.parquet"
    target = str(path).replace("'", "''")
    duckdb.sql(
        "COPY (SELECT * FROM (VALUES ('8ca59966-66ce-ab36-0512-bd1311072231'::UUID, 'T1', 2.5::DOUBLE), "
        "(NULL, 'T2', -1.0::DOUBLE)) AS t(tracking, external_id, amount)) "
        f"TO '{target}' (FORMAT parquet)"
    )
    model = tmp_path / "ids.py"
    model.write_text(
        "from uuid import UUID\nfrom pydantic import BaseModel\n"
        "class Shipment(BaseModel):\n    tracking: UUID | None\n    tracking_text: str = ''\n"
        "    external_id: str\n    amount: float\n"
    )
    done = cli("run", str(path), "--db", str(db), "--schema", f"{model}:Shipment")
    assert done.returncode == 0, done.stderr
    assert raw_lines(db, 1) == [
        '{"tracking":"8ca59966-66ce-ab36-0512-bd1311072231","external_id":"T1","amount":2.5}',
        '{"tracking":null,"external_id":"T2","amount":-1.0}',
    ]
    stored = query(db, "SELECT tracking::VARCHAR, external_id FROM shipment ORDER BY 2")
    assert stored == [("8ca59966-66ce-ab36-0512-bd1311072231", "T1"), (None, "T2")]


def test_an_arrow_file_only_its_footer_reads_says_so_on_stdin(tmp_path: Path) -> None:
    """A Polars-written Arrow file is read by its footer: from stdin the error suggested
    Parquet (independent README audit). It names the cause; a Parquet file named .arrow gets
    the Parquet hint."""
    frame = pl.DataFrame({"external_id": ["a"], "amount": [1.0]})
    arrow, parquet = tmp_path / "f.arrow", tmp_path / "p.arrow"
    frame.write_ipc(arrow)
    frame.write_parquet(parquet)
    db = tmp_path / "a.duckdb"
    piped = cli("run", "-", "--db", str(db), stdin=arrow.read_bytes())
    assert (piped.returncode, piped.stderr.decode()) == (
        2,
        "error: stdin: not readable as an Arrow IPC stream (Invalid flatbuffers message.); an "
        "Arrow file laid out as some writers do (Polars' write_ipc) is read by its footer, at "
        "its end, which a pipe or stdin cannot give (give the file's path, or write it as an "
        "Arrow stream)\n",
    )
    assert cli("run", str(arrow), "--db", str(db), "-q").returncode == 0
    named = cli("run", str(parquet), "--db", str(db))
    assert named.returncode == 2
    assert named.stderr.decode().startswith(f"error: {parquet}: not a readable Arrow IPC file (")
    assert named.stderr.decode().endswith(") (it is Parquet: pass --format parquet)\n")
