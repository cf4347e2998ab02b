"""Keys that several fields may read, under ``extra="forbid"``: Pydantic takes each field's
first present key, and reports as extra only a present key no field took. Random models
(aliases, AliasChoices with repeats, populate_by_name) and random rows, in CSV (text) and
NDJSON (typed), against ``model_validate``: verdict, values, and the ordered (type, loc)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import (
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
)
from pydantic.alias_generators import to_camel

from engine.batch import ROW
from engine.sources.csv import CsvSource
from engine.sources.json import JsonSource
from engine.validation.compiler import compile_schema
from engine.validation.error_list import ERRORS
from engine.validation.validate import BatchValidator
from tests.parity import write_csv

POOL = ("a", "b", "c", "f0", "f1")
Outcome = tuple[bool, Any]


def expected(model: type[BaseModel], row: dict[str, str]) -> Outcome:
    try:
        return True, model.model_validate(row).model_dump()
    except ValidationError as exc:
        return False, [(e["type"], [str(part) for part in e["loc"]]) for e in exc.errors()]


def engine_outcomes(model: type[BaseModel], path: Path, *, typed: bool) -> dict[int, Outcome]:
    schema = compile_schema(model, typed=typed)
    source: CsvSource | JsonSource
    if typed:
        source = JsonSource(
            path,
            keys=schema.input_keys,
            want_all_keys=True,
            array=False,
            block_size=1 << 16,
            max_record_bytes=1 << 16,
        )
    else:
        source = CsvSource(path, block_size=1 << 16, max_record_bytes=1 << 16)
    found: dict[int, Outcome] = {}
    for batch in source.batches():
        result = BatchValidator(schema, source.keys).validate(batch, datetime.now(UTC))
        for row in result.valid.iter_rows(named=True):
            found[row[ROW]] = (True, {k: v for k, v in row.items() if k != ROW})
        for row in result.invalid.iter_rows(named=True):
            found[row[ROW]] = (False, [(e["type"], e["loc"]) for e in row[ERRORS]])
    return found


aliases = st.one_of(
    st.none(),
    st.sampled_from(POOL),
    st.lists(st.sampled_from(POOL), min_size=1, max_size=3).map(lambda k: AliasChoices(*k)),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fields=st.lists(st.tuples(aliases, st.booleans()), min_size=1, max_size=3),
    by_name=st.booleans(),
    header=st.lists(st.sampled_from((*POOL, "zz")), min_size=1, max_size=6, unique=True),
    cells=st.lists(st.lists(st.sampled_from(["", "v", "w"]), min_size=6, max_size=6), max_size=8),
)
def test_shared_and_repeated_keys_get_pydantics_verdicts(
    tmp_path: Path,
    fields: list[tuple[Any, bool]],
    by_name: bool,
    header: list[str],
    cells: list[list[str]],
) -> None:
    definitions: dict[str, Any] = {
        f"f{i}": (str, Field(validation_alias=alias))
        if required
        else (str | None, Field(default=None, validation_alias=alias))
        for i, (alias, required) in enumerate(fields)
    }
    model = create_model(
        "Shared", __config__=ConfigDict(extra="forbid", populate_by_name=by_name), **definitions
    )
    rows = [dict(zip(header, values, strict=False)) for values in cells]
    csv, ndjson = tmp_path / "r.csv", tmp_path / "r.ndjson"
    write_csv(csv, header, rows)
    present = [{k: v for k, v in row.items() if v != ""} for row in rows]
    ndjson.write_text("".join(json.dumps(row) + "\n" for row in present))
    if not rows:
        return
    for path, typed in ((csv, False), (ndjson, True)):
        got = engine_outcomes(model, path, typed=typed)
        for number, row in enumerate(present, start=1):
            assert got[number] == expected(model, row), (typed, row)


class Both(BaseModel):
    """snake_case and camelCase keys, the usual way: single words give a repeated choice."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=AliasGenerator(validation_alias=lambda n: AliasChoices(n, to_camel(n))),
    )
    name: str
    user_id: int


class Crossed(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    a: str | None = Field(default=None, validation_alias="b")
    b: str | None = Field(default=None, validation_alias="a")


@pytest.mark.parametrize("typed", [False, True])
def test_reported_shared_key_models(tmp_path: Path, typed: bool) -> None:
    cases: list[tuple[type[BaseModel], list[dict[str, str]]]] = [
        (Both, [{"name": "Ada", "userId": "1"}, {"name": "Bo", "user_id": "2", "userId": "3"}]),
        (Crossed, [{"a": "x", "b": "y"}]),
    ]
    for model, rows in cases:
        path = tmp_path / ("r.ndjson" if typed else "r.csv")
        if typed:
            path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        else:
            write_csv(path, list(rows[-1]), rows)
        got = engine_outcomes(model, path, typed=typed)
        assert [got[n] for n in range(1, len(rows) + 1)] == [expected(model, r) for r in rows]
    assert expected(Both, {"name": "Bo", "user_id": "2", "userId": "3"}) == (
        False,
        [("extra_forbidden", ["userId"])],
    )
    assert expected(Crossed, {"a": "x", "b": "y"}) == (True, {"a": "y", "b": "x"})
