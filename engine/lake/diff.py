"""``schema diff --lake``: what the lake's table has against what the model wants, read-only.

The same comparison as on a DuckDB file (``engine.store.diff``), against the table as the
read commands show it (the union of its generations, ``engine.lake.generations``), with the
decisions of the lake's writers (``engine.lake.evolve``, ``engine.lake.targets``); a last
line says when the rows would start a new generation, or go to an older one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from engine.errors import Spelling, python_spelling
from engine.lake.evolve import model_columns, plan_for, refusal
from engine.lake.generations import generations
from engine.lake.location import Lake
from engine.lake.reader import open_lake_reader
from engine.lake.targets import lake_target
from engine.store.ddl import quote
from engine.store.diff import SchemaDiff, diff_lines
from engine.validation.storage_options import table_name


def lake_schema_diff(
    lake: Lake,
    model: type[BaseModel],
    *,
    context: Mapping[str, Any] | None = None,
    spell: Spelling = python_spelling,
) -> SchemaDiff:
    """Compare ``model`` with the table its next run would write to in ``lake``."""
    from engine.validation.compiler import compile_schema  # the compiler only when asked

    with open_lake_reader(lake) as reader:  # first: a lake that is not there is one line
        schema, following = lake_target(
            lake, compile_schema(model, typed=False, context=dict(context or {}))
        )
        found = generations(lake, schema.table)
        fit = plan_for(lake, schema, model_columns(schema))
        rows, version = 0, None
        if found:
            rows = int(reader.rows(f"SELECT count(*) FROM {quote(schema.table)}")[0][0])
            versions = reader.rows(
                "SELECT version FROM schema_versions WHERE schema_fingerprint = ? "
                "AND target_table = ?",
                [schema.fingerprint, schema.table],
            )
            version = int(versions[0][0]) if versions else None
    error = None if fit.plan.compatible else refusal(lake, schema, fit.plan, following)
    newest = found[-1][0] if found else schema.table
    note = None
    if fit.new_generation:
        note = (
            f"a wider type starts a new generation of the table, the Delta table "
            f"{fit.generation}; readers see every generation as one table"
        )
    elif fit.plan.compatible and fit.generation != newest:
        note = (
            f"its rows go to {fit.generation}, an older generation of the table (the newest, "
            f"{newest}, has a wider type); readers see every generation as one table"
        )
    return SchemaDiff(
        schema.name,
        schema.fingerprint,
        table_name(schema.model),
        schema.table,
        bool(found),
        rows,
        version,
        diff_lines(model_columns(schema), fit.stored, fit.plan),
        fit.plan.refusals,
        error.remedy_text(spell) if error is not None else None,
        lake_table=fit.generation,
        lake_note=note,
    )
