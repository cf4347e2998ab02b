"""``schema diff``: what the stored table has against what the model wants, read-only."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from engine.errors import Spelling, python_spelling
from engine.lake.location import Lake
from engine.store.evolution import Plan
from engine.store.store import Store
from engine.store.versions import find_target, refusal, stored_columns, wanted_columns


@dataclass(frozen=True)
class SchemaDiff:
    schema: str
    fingerprint: str
    declared_table: str
    table: str
    exists: bool
    stored_rows: int
    version: int | None  # this fingerprint's version in that table, if it wrote there
    lines: tuple[tuple[str, str, str], ...]  # (mark, column, words)
    refusals: tuple[str, ...]
    remedy: str | None
    lake_table: str | None = None  # on a lake: the Delta table (generation) the rows go to
    lake_note: str | None = None  # on a lake: what that generation means, when it matters

    @property
    def compatible(self) -> bool:
        return not self.refusals

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "fingerprint": self.fingerprint,
            "declared_table": self.declared_table,
            "table": self.table,
            "table_exists": self.exists,
            "stored_rows": self.stored_rows,
            "version": self.version,
            "compatible": self.compatible,
            "columns": [{"change": m, "column": c, "detail": w} for m, c, w in self.lines],
            "refusals": list(self.refusals),
            "remedy": self.remedy,
        } | ({"lake_table": self.lake_table} if self.lake_table is not None else {})


MARKS = {"same": "=", "add": "+", "widen": "~", "keep": "-", "refused": "!"}


def schema_diff(
    db: str | os.PathLike[str] | Lake,
    model: type[BaseModel] | str,
    *,
    context: Mapping[str, Any] | None = None,
    spell: Spelling = python_spelling,
) -> SchemaDiff:
    """Compare ``model`` (a Pydantic model, or a name ``load_schema`` resolves) with the
    table its next run would write to in ``db`` (a DuckDB file, or a Lake), read-only."""
    from engine.schemas import load_schema
    from engine.validation.compiler import compile_schema  # the compiler only when asked

    if isinstance(model, str):
        model = load_schema(model)

    if isinstance(db, Lake):
        from engine.lake.diff import lake_schema_diff  # deltalake: loaded only for a lake

        return lake_schema_diff(db, model, context=context, spell=spell)

    schema = compile_schema(model, typed=False, context=dict(context or {}))
    with Store(Path(db), read_only=True) as store:
        target = find_target(store, schema)
        stored = stored_columns(store, target.table)
        error = None if target.plan.compatible else refusal(store, schema, target)
    lines = diff_lines(wanted_columns(schema), stored, target.plan)
    return SchemaDiff(
        schema.name,
        schema.fingerprint,
        target.declared,
        target.table,
        target.exists,
        target.stored_rows,
        target.version,
        lines,
        target.plan.refusals,
        error.remedy_text(spell) if error is not None else None,
    )


def diff_lines(
    wanted: Mapping[str, str], stored: Mapping[str, str], plan: Plan
) -> tuple[tuple[str, str, str], ...]:
    """(mark, column, words) per column of the model, then per column it leaves."""
    lines: list[tuple[str, str, str]] = []
    by_column = {change.column: change for change in plan.changes}
    for name, kind in wanted.items():
        change = by_column.get(name)
        if change is not None:
            lines.append((change.kind, name, change.describe()))
        elif stored.get(name) == kind:
            lines.append(("same", name, kind))
        elif name in stored:
            lines.append(("refused", name, f"{stored[name]} in the table, {kind} in the model"))
        else:
            lines.append(("refused", name, f"new required field {kind} over stored rows"))
    lines.extend(
        (change.kind, change.column, change.describe())
        for change in plan.changes
        if change.kind == "keep"
    )
    return tuple(lines)
