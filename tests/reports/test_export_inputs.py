"""Error inputs Python's json writes but strict JSON and DuckDB's reader do not take: NaN,
±Infinity and lone surrogates, alone and nested in a whole-record input. Every errors export,
``summary`` and ``report`` read them; the JSON formats are strict JSON, and each row's error
list is Pydantic's, with a non-finite float as null and a lone surrogate shown as its
``\\uXXXX`` escape (independent attack of 2026-12-05: one such row made every errors export,
``summary`` and ``report`` fail, and the JSON exports held bare NaN)."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import polars as pl
import pytest
from click.testing import Result
from pydantic import BaseModel, Field, ValidationError

import engine

RunCli = Callable[..., Result]
SEED = 20261205
ROWS = 400


class Hostile(BaseModel):
    s: str
    f: float = Field(gt=0)
    n: int


STRINGS = ["ok", "NaN", "Infinity", "a\udfffb", "\ud800", "\udc80\udc80", "x\\ud800", "😀", ""]
FLOATS: list[Any] = [1.5, -2.0, math.nan, math.inf, -math.inf, 0, "NaN", "1e400"]


def rows(rng: random.Random) -> list[dict[str, Any]]:
    made = []
    for _ in range(ROWS):
        row: dict[str, Any] = {
            "s": rng.choice(STRINGS),
            "f": rng.choice(FLOATS),
            "n": rng.choice([1, "2", "x", math.nan, 3.5]),
            "extra": {"deep": [rng.choice(FLOATS[:5]), rng.choice(STRINGS)]},  # not a field
        }
        for key in ("s", "f", "n"):  # a missing field's input is the whole record, NaN and all
            if rng.random() < 0.08:
                del row[key]
        made.append(row)
    return made


def shown(value: Any) -> Any:
    """An input as the exports show it: non-finite floats null, lone surrogates escaped."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return "".join(f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(v) for v in value]
    return value


def expected(row: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Pydantic's errors for the row (None when valid and storable)."""
    try:
        model = Hostile.model_validate(row)
    except ValidationError as exc:
        return [
            {"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"], "input": shown(e["input"])}
            for e in exc.errors(include_url=False)
        ]
    if any(0xD800 <= ord(c) <= 0xDFFF for c in model.s):
        msg = "Valid string, but it holds a lone surrogate, which the VARCHAR column (UTF-8) cannot store"
        return [
            {"type": "string_storage_surrogate", "loc": ["s"], "msg": msg, "input": shown(row["s"])}
        ]
    return None


def strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, Any]]:
    tmp = tmp_path_factory.mktemp("hostile")
    made = rows(random.Random(SEED))
    data = tmp / "hostile.ndjson"
    data.write_text("".join(json.dumps(r) + "\n" for r in made))  # surrogates as \u escapes
    db = tmp / "h.duckdb"
    engine.ingest(data, db=db, schema=Hostile)
    errors = {n: e for n, row in enumerate(made, start=1) if (e := expected(row)) is not None}
    return db, errors


def test_the_json_exports_are_strict_and_pydantics(
    run_cli: RunCli, hostile: tuple[Path, dict[int, Any]], tmp_path: Path
) -> None:
    db, errors = hostile
    assert len(errors) > ROWS // 2  # the generator's mix: most rows are invalid
    for fmt in ("json", "ndjson"):
        out = tmp_path / f"e.{fmt}"
        done = run_cli("export", "errors", "--db", str(db), "-o", str(out), "-q")
        assert (done.exit_code, done.output) == (0, "")
        text = out.read_text(encoding="utf-8")
        records = (
            strict_json(text)
            if fmt == "json"
            else [strict_json(line) for line in text.splitlines()]
        )
        assert {r["row_number"]: r["errors"] for r in records} == errors, fmt


def test_every_other_export_and_the_summaries_read_them(
    run_cli: RunCli, hostile: tuple[Path, dict[int, Any]], tmp_path: Path
) -> None:
    db, errors = hostile
    for fmt in ("csv", "parquet", "xlsx"):
        out = tmp_path / f"e.{fmt}"
        done = run_cli("export", "errors", "--db", str(db), "-o", str(out), "-q")
        assert (done.exit_code, done.output) == (0, "")
        if fmt == "csv":
            frame = pl.read_csv(out, infer_schema=False)
        elif fmt == "parquet":
            frame = pl.read_parquet(out)
        else:
            book = openpyxl.load_workbook(out, read_only=True)
            header, *cells = list(book["errors"].iter_rows(values_only=True))
            book.close()
            frame = pl.DataFrame(cells, schema=list(map(str, header)), orient="row")
        lists = {int(n): strict_json(e) for n, e in frame.select("row_number", "errors").rows()}
        assert lists == errors, fmt
    summary = run_cli("summary", "--db", str(db), "--json")
    assert summary.exit_code == 0
    found = strict_json(summary.output)
    assert found["runs_completed"] == 1 and found["rows_invalid"] == len(errors)
    # Field s fails only on its lone surrogates, each shown as its escape.
    s_values = [
        e["input"]
        for listed in errors.values()
        for e in listed
        if e["loc"] == ["s"] and e["type"] != "missing"
    ]
    assert sorted(
        (v["value"], v["count"]) for v in found["top_values"] if v["field"] == "s"
    ) == sorted((value, s_values.count(value)) for value in set(s_values))
    assert set(s_values) == {"a\\udfffb", "\\ud800", "\\udc80\\udc80"}
    assert run_cli("summary", "--db", str(db)).exit_code == 0
    report = run_cli("report", "--db", str(db), "-o", str(tmp_path / "r.html"))
    assert report.exit_code == 0


def test_an_errors_export_of_many_invalid_rows_fits_the_read_cap(
    run_cli: RunCli, tmp_path: Path
) -> None:
    """The read commands' DuckDB is capped (512 MB): at 256 MB, the errors export of one
    run of 333,456 invalid rows ran out of memory (an independent attack)."""
    from engine.generate import generate

    data, db = tmp_path / "g.csv", tmp_path / "g.duckdb"
    generate(data, 500_000, seed=1, bad_fraction=0.5)
    engine.ingest(data, db=db, schema="transactions")
    out = tmp_path / "errors.csv"
    done = run_cli("export", "errors", "--db", str(db), "-o", str(out), "-q")
    assert (done.exit_code, done.output) == (0, "")
    exported = pl.scan_csv(out, infer_schema=False).select(pl.len()).collect().item()
    with duckdb.connect(str(db), read_only=True) as con:
        invalid = con.execute("SELECT rows_invalid FROM ingestion_runs").fetchone()
    assert (exported,) == invalid == (333_456,)
