"""Stored control characters reach the terminal as visible escapes, never as raw bytes.

A value can carry an OSC-8 hyperlink (``ESC ] 8 ;; url BEL text ESC ] 8 ;; BEL``) that shows
"click" but links elsewhere, or ``ESC [ 2 J`` that clears the screen: `sql --format table`
and `summary` show them as ``\\x1b...``, as the summary shows offending values with ``repr``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.reports.conftest import ingest

RunCli = Callable[..., Result]
LINK = "\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07"
CLEAR = "\x1b[2J"
C1 = "\x9b31m"  # CSI as a single C1 byte


def test_sql_table_and_summary_show_escapes(run_cli: RunCli, tmp_path: Path) -> None:
    source = tmp_path / f"evil{CLEAR}.ndjson"
    record = {
        "external_id": f"ID{CLEAR}",
        "amount": 1.5,
        "currency": "USD",
        "source_channel": f"{LINK} {C1}\tok\nnext",
        "timestamp": "2024-01-01T00:00:00Z",
    }
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")
    db = tmp_path / "escapes.duckdb"
    ingest(db, source)
    result = run_cli(
        "sql",
        f'SELECT external_id, source_channel AS "{CLEAR}name" FROM processed_data',
        "--db",
        str(db),
    )
    assert result.exit_code == 0, result.output
    assert (
        "\x1b" not in result.output and "\x9b" not in result.output and "\x07" not in result.output
    )
    assert result.output.splitlines() == [
        " external_id ┃ \\x1b[2Jname                                                 ",
        "━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━",
        " ID\\x1b[2J   │ \\x1b]8;;http://evil.example/\\x07click\\x1b]8;;\\x07 \\x9b31m   ",
        "             │ ok                                                          ",
        "             │ next                                                        ",
        "1 row",
    ]
    summary = run_cli("summary", "--db", str(db))
    assert summary.exit_code == 0, summary.output
    assert "\x1b" not in summary.output
    assert "evil\\x1b[2J.ndjson" in summary.output
    # CSV and JSON output are data for programs: the stored text, byte for byte.
    raw = run_cli(
        "sql", "SELECT source_channel FROM processed_data", "--db", str(db), "--format", "json"
    )
    assert json.loads(raw.output) == [{"source_channel": record["source_channel"]}]


def test_bidi_controls_line_separators_and_error_lines_are_shown_as_escapes(
    run_cli: RunCli, tmp_path: Path
) -> None:
    """A right-to-left override reorders the rest of a terminal line, U+2028 breaks it: both
    are shown as escapes in the table; an error line naming a file with ESC in its name too.
    Characters that only join or shape text (a zero-width joiner in an emoji) stay."""
    family = "\U0001f468\u200d\U0001f469"
    db = tmp_path / "bidi.duckdb"
    source = tmp_path / "bidi.ndjson"
    record = {
        "external_id": "ID\u202eevil",
        "amount": 1.5,
        "currency": "USD",
        "source_channel": f"a\u2028b {family}",
        "timestamp": "2024-01-01T00:00:00Z",
    }
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")
    ingest(db, source)
    result = run_cli(
        "sql", "SELECT external_id, source_channel FROM processed_data", "--db", str(db)
    )
    assert result.exit_code == 0, result.output
    assert "ID\\u202eevil" in result.output and f"a\\u2028b {family}" in result.output
    hostile = tmp_path / f"x{CLEAR}.parquet"
    hostile.write_bytes(b"garbage")
    failed = run_cli("run", str(hostile), "--db", str(db))
    assert failed.exit_code == 2
    assert failed.stderr == (
        f"error: {tmp_path}/x\\x1b[2J.parquet: not a readable Parquet file (Parquet file size "
        "is 7 bytes, smaller than the minimum file footer (8 bytes))\n"
    )
    # A line feed in a file name: the error is still one line (it was cut in two).
    broken = tmp_path / "bad\nname.csv"
    broken.write_bytes(b"")
    failed = run_cli("run", str(broken), "--db", str(db))
    assert (failed.exit_code, failed.stderr) == (
        2,
        f"error: {tmp_path}/bad\\nname.csv: file is empty\n",
    )
