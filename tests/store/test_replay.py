"""``replay`` through the real CLI, and a generated check: the rows a replay moves are
exactly those Pydantic accepts under the new model among those it refused under the old."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import engine
from engine.replaying import replay
from engine.schemas import load_schema
from engine.store.store import Store
from tests.conftest import DATA, ROOT, query
from tests.store.lifecycle import cli, models

CSV = 'rid;value;legacy\na;1;x\nb;1.5;y\nc;zz;z\n"d";2.5;"q;r"\ne;3.5;\n'
NDJSON = '{"rid":"f","value":4.5}\n{"rid":"g","value":1}\n{"rid":"a","value":9.5}\n'


def stored(tmp_path: Path) -> tuple[Path, Path]:
    db, spec = tmp_path / "r.duckdb", models(tmp_path)
    (tmp_path / "r.csv").write_text(CSV)
    (tmp_path / "r.ndjson").write_text(NDJSON)
    done = cli(
        "run", tmp_path / "r.csv", tmp_path / "r.ndjson", "--db", db, "--schema",
        f"{spec}:V1", "--delimiter", ";", "--quiet",
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    return db, spec


def test_replay_moves_the_rows_a_fixed_model_accepts_under_their_run_and_row(
    tmp_path: Path,
) -> None:
    db, spec = stored(tmp_path)
    assert query(db, "SELECT run_id, row_number FROM invalid_rows ORDER BY ALL") == [
        (1, 2),
        (1, 3),
        (1, 4),
        (1, 5),
        (2, 1),
        (2, 3),
    ]
    done = cli("replay", "--run", "1", "--db", db, "--schema", f"{spec}:V2")
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        "replay 1: 3 of 4 invalid rows now pass, moved into readings; 1 still invalid\n",
        "",
    )
    assert query(
        db, "SELECT run_id, row_number, rid, value, legacy FROM readings ORDER BY ALL"
    ) == [
        (1, 1, "a", 1.0, "x"),
        (1, 2, "b", 1.5, "y"),
        (1, 4, "d", 2.5, "q;r"),
        (1, 5, "e", 3.5, None),
        (2, 2, "g", 1.0, None),
    ]
    assert query(db, "SELECT run_id, row_number FROM invalid_rows ORDER BY ALL") == [
        (1, 3),
        (2, 1),
        (2, 3),
    ]
    assert query(db, "SELECT run_id, row_number, replay_id FROM replayed_rows ORDER BY ALL") == [
        (1, 2, 1),
        (1, 4, 1),
        (1, 5, 1),
    ]
    # The moved rows' errors are kept, in replayed_rows; the run's figures follow.
    assert query(
        db, "SELECT count(*) FROM replayed_rows WHERE len(inputs) = 1 AND len(rule_ids) = 1"
    ) == [(3,)]
    assert query(db, "SELECT run_id, rows_valid, rows_invalid FROM ingestion_runs") == [
        (1, 4, 1),
        (2, 1, 2),
    ]
    versions = query(
        db,
        "SELECT v.run_id, v.row_number, s.schema_name FROM row_versions v "
        "JOIN schema_versions s USING (schema_fingerprint) ORDER BY ALL",
    )
    assert versions == [
        (1, 1, "V1"),
        (1, 2, "V2"),
        (1, 3, "V1"),
        (1, 4, "V2"),
        (1, 5, "V2"),
        (2, 1, "V1"),
        (2, 2, "V1"),
        (2, 3, "V1"),
    ]
    # Run 2's f passes now; its a (row 3) is still a duplicate of run 1's a: stays invalid.
    again = cli("replay", "--all-failed", "--db", db, "--schema", f"{spec}:V2", "--json")
    assert json.loads(again.stdout) == {
        "replay_id": 2,
        "table": "readings",
        "runs": {"1": {"checked": 1, "moved": 0}, "2": {"checked": 2, "moved": 1}},
        "rows_checked": 3,
        "rows_moved": 1,
        "rows_still_invalid": 2,
        "edits_not_replayed": 0,
    }
    assert query(
        db, "SELECT replay_id, target_table, runs, rows_checked, rows_moved FROM replays"
    ) == [
        (1, "readings", [1], 4, 3),
        (2, "readings", [1, 2], 3, 1),
    ]


def test_replay_where_picks_the_rows_and_errors_are_one_line(tmp_path: Path) -> None:
    db, spec = stored(tmp_path)
    picked = cli(
        "replay", "--run", "1", "--where", "raw LIKE 'b;%'", "--db", db, "--schema", f"{spec}:V2"
    )
    assert picked.stdout == (
        "replay 1: 1 of 1 invalid row now pass, moved into readings; 0 still invalid\n"
    )
    assert query(db, "SELECT rid FROM readings WHERE run_id = 1 ORDER BY rid") == [("a",), ("b",)]
    # A condition cannot reach past the run it is given.
    wide = cli(
        "replay",
        "--run",
        "2",
        "--where",
        "row_number > 0 OR TRUE",
        "--db",
        db,
        "--schema",
        f"{spec}:V2",
    )
    assert wide.returncode == 0
    assert query(db, "SELECT DISTINCT run_id FROM replayed_rows ORDER BY 1") == [(1,), (2,)]
    assert query(db, "SELECT count(*) FROM replayed_rows WHERE run_id = 1") == [(1,)]
    cases = [
        (["--run", "9"], f"error: {db}: no run 9 in this database\n"),
        ([], "error: give --run N (repeatable), --all-failed or --from FILE\n"),
        (
            ["--all-failed", "--where", "nonsense"],
            "error: --where 'nonsense' cannot select invalid rows (Binder Error: Referenced "
            'column "nonsense" not found in FROM clause!)\n',
        ),
        (
            ["--all-failed", "--where", "1=1) OR (1=1"],
            "error: --where '1=1) OR (1=1': not a single SQL condition (Parser Error: syntax "
            'error at or near ")")\n',
        ),
        (  # replay writes: no lockdown stands behind the condition, so no subquery at all
            [
                "--all-failed",
                "--where",
                f"CAST((SELECT content FROM read_text('{db}')) AS INT) = 1",
            ],
            f"error: --where \"CAST((SELECT content FROM read_text('{db}')) AS INT) = 1\": a "
            "subquery is not allowed here (the condition reads the selected rows' own columns)\n",
        ),
        (
            ["--all-failed", "--where", "error(current_setting('secret_directory')) IS NULL"],
            "error: --where \"error(current_setting('secret_directory')) IS NULL\": error() is "
            "not allowed here (the condition reads the selected rows' own columns)\n",
        ),
        (
            ["--all-failed", "--where", "EXISTS (FROM glob('/*'))"],
            "error: --where \"EXISTS (FROM glob('/*'))\": a subquery is not allowed here (the "
            "condition reads the selected rows' own columns)\n",
        ),
    ]
    for args, message in cases:
        done = cli("replay", *args, "--db", db, "--schema", f"{spec}:V2")
        assert (done.returncode, done.stdout, done.stderr) == (2, "", message)


def test_replay_where_writes_nothing_and_loads_no_extension(tmp_path: Path) -> None:
    """The condition runs on the writing connection: a function with side effects
    (``nextval`` advanced the run ids from 1 to 124) is refused, and a function of an
    extension the engine does not link in is an unknown function, not a download."""
    db, spec = stored(tmp_path)
    extensions = Path.home() / ".duckdb" / "extensions"
    before = sorted(extensions.rglob("*")) if extensions.exists() else []
    side_effects = "is not allowed here (the condition reads the selected rows' own columns)\n"
    cases = [
        (
            "nextval('ingestion_run_ids') > 0",
            "error: --where \"nextval('ingestion_run_ids') > 0\": nextval(), which has side "
            f"effects, {side_effects}",
        ),
        (
            "row_number > 0 AND setval('replay_ids', 100) > 0",
            "error: --where \"row_number > 0 AND setval('replay_ids', 100) > 0\": setval(), "
            f"which has side effects, {side_effects}",
        ),
        (
            "list_contains(list_transform([1], x -> currval('ingestion_run_ids')), 1)",
            "error: --where \"list_contains(list_transform([1], x -> currval('ingestion_run_ids')"
            f'), 1)": currval(), which has side effects, {side_effects}',
        ),
        (
            "text(1, '0') = 'x'",
            "error: --where \"text(1, '0') = 'x'\" cannot select invalid rows (Catalog Error: "
            'Scalar Function with name "text" is not in the catalog, but it exists in the excel '
            "extension.)\n",
        ),
        (
            "host('1.2.3.4'::INET) = 'x'",
            "error: --where \"host('1.2.3.4'::INET) = 'x'\" cannot select invalid rows (Catalog "
            'Error: Scalar Function with name "host" is not in the catalog, but it exists in the '
            "inet extension.)\n",
        ),
    ]
    for where, message in cases:
        done = cli("replay", "--all-failed", "--where", where, "--db", db, "--schema", f"{spec}:V2")
        assert (done.returncode, done.stdout, done.stderr) == (2, "", message), where
    rows = query(db, "SELECT sequence_name, last_value FROM duckdb_sequences()")
    sequences = {str(name): value for name, value in rows}
    assert sequences["ingestion_run_ids"] == 2  # two runs
    assert sequences["replay_ids"] in (None, 1)  # not setval's 100 (a failed replay took 1)
    assert (sorted(extensions.rglob("*")) if extensions.exists() else []) == before
    with Store(db) as store:  # the writer's own settings
        assert store.rows(
            "SELECT current_setting('autoinstall_known_extensions'), "
            "current_setting('autoload_known_extensions')"
        ) == [(False, False)]


def test_replay_where_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    db, spec = stored(tmp_path)
    done = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "replay", "--all-failed", "--where",
         b"raw = '\xff'", "--db", str(db), "--schema", f"{spec}:V2"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        "error: --where is not UTF-8 text (at character 8)\n",
    )


def test_replaying_with_the_same_model_moves_nothing(tmp_path: Path) -> None:
    """The raw text read again gives every invalid row the verdict its run gave it."""
    db = tmp_path / "same.duckdb"
    with Store(db) as store:
        for name in ("transactions_sample.csv", "transactions_sample.ndjson"):
            engine.ingest(DATA / name, db=store, schema="transactions")
        before = store.rows("SELECT * FROM invalid_rows ORDER BY ALL")
        result = replay(store, load_schema("transactions"))
        assert (result.checked, result.moved) == (len(before), 0)
        assert store.rows("SELECT * FROM invalid_rows ORDER BY ALL") == before


VALUES = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(repr),
    st.sampled_from(["", "x", "1e3", " 2 ", "3.0", "1_000", "inf", '4"', "5;6", "7\n8"]),
)
DIALECTS = st.sampled_from([(",", '"'), (";", '"'), ("\t", "'"), ("|", '"')])


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(VALUES, min_size=1, max_size=15), DIALECTS)
def test_a_replay_moves_exactly_what_pydantic_accepts_under_the_new_model(
    tmp_path: Path, values: list[str], dialect: tuple[str, str]
) -> None:
    spec = models(tmp_path)
    old, new = load_schema(f"{spec}:V1"), load_schema(f"{spec}:V2")
    delimiter, quote = dialect
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, quotechar=quote, lineterminator="\n")
    writer.writerow(["rid", "value"])
    writer.writerows([f"r{i}", value] for i, value in enumerate(values, 1))
    data = tmp_path / "g.csv"
    data.write_text(text.getvalue())
    db = tmp_path / f"g{abs(hash((tuple(values), dialect)))}.duckdb"

    def verdict(model: type, value: str) -> bool:
        row = {"rid": "r", **({"value": value} if value else {})}
        try:
            model.model_validate(row)  # type: ignore[attr-defined]
        except ValidationError:
            return False
        return True

    with Store(db) as store:
        engine.ingest(data, db=store, schema=old, delimiter=delimiter, quote_char=quote)
        result = replay(store, new)
        moved = store.rows("SELECT row_number FROM replayed_rows ORDER BY 1")
    expected = [i for i, v in enumerate(values, 1) if not verdict(old, v) and verdict(new, v)]
    assert [row[0] for row in moved] == expected
    assert result.moved == len(expected)
    db.unlink()


def test_replay_from_an_edited_errors_export_keeps_both_texts(tmp_path: Path) -> None:
    db, spec = stored(tmp_path)
    export = tmp_path / "fix.csv"
    done = cli("export", "errors", "-o", export, "--db", db, "--run", "1", "--no-sanitize")
    assert done.returncode == 0
    with export.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["raw"] for r in rows] == ["b;1.5;y", "c;zz;z", '"d";2.5;"q;r"', "e;3.5;"]
    for row in rows:  # correct c's value, leave the others as they were
        row["raw"] = row["raw"].replace("zz", "33")
    with export.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    done = cli("replay", "--from", export, "--db", db, "--schema", f"{spec}:V1")
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        "replay 1: 1 of 4 invalid rows now pass, moved into readings; 3 still invalid\n",
        "",
    )
    assert query(db, "SELECT rid, value FROM readings WHERE run_id = 1 AND row_number = 3") == [
        ("c", 33)
    ]
    # What validated it, and what the file said.
    assert query(db, "SELECT run_id, row_number, raw FROM replayed_rows") == [(1, 3, "c;33;z")]
    assert query(db, "SELECT raw FROM raw_data WHERE run_id = 1 AND row_number = 3") == [
        ("c;zz;z",)
    ]
    again = cli("replay", "--from", export, "--db", db, "--schema", f"{spec}:V1")
    assert again.stdout == (
        "replay 2: 0 of 3 invalid rows now pass, moved into readings; 3 still invalid\n"
        f"1 row of {export} left alone: not invalid rows (valid, replayed before, or not "
        "selected by --where)\n"
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("run_id,row_number\n1,3\n")
    refused = cli("replay", "--from", bad, "--db", db, "--schema", f"{spec}:V1")
    assert (refused.returncode, refused.stderr) == (
        2,
        f"error: {bad}: no column raw (replay --from needs run_id, row_number and raw, as "
        "`export errors` writes them)\n",
    )
    twice = tmp_path / "twice.csv"
    twice.write_text("run_id,row_number,raw\n1,3,a\n1,3,b\n")
    refused = cli("replay", "--from", twice, "--db", db, "--schema", f"{spec}:V1")
    assert refused.stderr == f"error: {twice}, line 3: run 1, row 3 is given twice\n"


def test_replay_reads_a_json_array_s_elements_that_span_lines(tmp_path: Path) -> None:
    db, spec = tmp_path / "a.duckdb", models(tmp_path)
    data = tmp_path / "a.json"
    data.write_text(
        '[\n  {"rid": "a",\n   "value": 1.5},\n  {"rid": "b", "value": 2},\n'
        '  {"rid": "c", "value": \n 2.5}, {"rid": "d", "value": [1,\n2]}, {"broken": }\n]\n'
    )
    assert cli("run", data, "--db", db, "--schema", f"{spec}:V1").returncode == 0
    assert query(db, "SELECT row_number FROM invalid_rows ORDER BY 1") == [(1,), (3,), (4,), (5,)]
    done = cli("replay", "--all-failed", "--db", db, "--schema", f"{spec}:V2")
    assert done.stdout == (
        "replay 1: 2 of 4 invalid rows now pass, moved into readings; 2 still invalid\n"
    )
    assert query(db, "SELECT row_number, rid, value FROM readings ORDER BY 1") == [
        (1, "a", 1.5),
        (2, "b", 2.0),
        (3, "c", 2.5),
    ]
