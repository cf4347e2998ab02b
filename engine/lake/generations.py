"""A schema's typed data on the lake as generations of Delta tables: widening without rewriting.

Delta has no in-place type change (delta-rs 1.6 neither enables nor writes the
``typeWidening`` table feature; a schema-merging append of wider values into a narrower
column is even cast silently: 1.5 is stored as 1), and a rewrite of the table would have to
be ordered against the blind appends of other writers, some of them possibly still on the
old model. So a widening rewrites nothing: it starts a new Delta table for the schema's
table, its next generation (``<table>``, then ``<table>__g2``, ``<table>__g3``...), created
with the widened model's columns. What a model may do is decided against the table as
readers see it (``union_columns``, what a DuckDB file's table would be), as on a DuckDB
file; its rows then go to the newest generation that holds their types (gaining the model's
new columns), and a widening starts the next one. A writer still on a model that a newer
generation's widening left behind (mid-rollout, on another machine) keeps appending to the
generation of its types (its rows are valid under its model) instead of being refused as a
narrowing. Generations are numbered without gaps (one is only started by a writer that found
the one before), are never removed, and their columns change only by added nullable columns;
a writer checks, before each append, that the generation's columns have its data's types
exactly (two writers that started one generation at once with different models: the second
finds it and decides again), so no append ever casts a value.

Readers see the table as one: the union, by column name, of its generations, each column
cast to the widest of its types (``union_sql``). Nothing else knows about generations: the
manifest, ``schema_versions`` and ``replaced_rows`` name the table, not a generation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from deltalake import DeltaTable

from engine.lake.location import Lake
from engine.lake.tables import open_table
from engine.store.ddl import quote
from engine.store.evolution import widens

SEPARATOR = "__g"
_GENERATION = re.compile(r"__g\d+$", re.IGNORECASE)  # table names ignore case


class GenerationMoved(Exception):
    """The generation a writer chose no longer has its data's types (another writer started
    it with another model): the writer decides again."""


def generation_name(table: str, number: int) -> str:
    return table if number == 1 else f"{table}{SEPARATOR}{number}"


def is_generation_name(name: str) -> bool:
    """A name the generations of another table would take, in any case (refused as a table
    name: ``readings__G2`` is the directory ``readings__g2`` where names ignore case)."""
    return bool(_GENERATION.search(name))


def generations(lake: Lake, table: str) -> list[tuple[str, DeltaTable]]:
    """The table's generations, oldest first (none if the table does not exist yet)."""
    found: list[tuple[str, DeltaTable]] = []
    while True:
        name = generation_name(table, len(found) + 1)
        opened = open_table(lake, name)
        if opened is None:
            return found
        found.append((name, opened))


def holds(stored: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    """A generation with columns ``stored`` takes rows of ``wanted`` as they are: each column
    it has is of the rows' type (the others it gains, nullable)."""
    return all(stored.get(name, kind) == kind for name, kind in wanted.items())


def union_columns(generations: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The table's columns as readers see them: every generation's, oldest first, each of
    the widest of its types."""
    by_column: dict[str, list[str]] = {}
    for columns in generations:
        for name, kind in columns.items():
            by_column.setdefault(name, []).append(kind)
    return {name: widest(kinds) or kinds[-1] for name, kinds in by_column.items()}


def widest(types: Sequence[str]) -> str | None:
    """The one of ``types`` that every other widens to, newest (last) first; None if none."""
    for candidate in reversed(types):
        if all(widens(kind, candidate) for kind in types):
            return candidate
    return None


def union_sql(sources: Sequence[tuple[str, Mapping[str, str]]]) -> str:
    """The generations as one relation: ``sources`` are (relation, its columns as DuckDB names
    their types), oldest first; each column cast to the widest of its types."""
    kinds: dict[str, list[str]] = {}
    for _, columns in sources:
        for name, kind in columns.items():
            kinds.setdefault(name, []).append(kind)
    target = {name: widest(found) for name, found in kinds.items()}  # None: DuckDB's union
    parts = []
    for relation, columns in sources:
        casts = [
            f"CAST({quote(name)} AS {target[name]}) AS {quote(name)}"
            for name, kind in columns.items()
            if target[name] not in (None, kind)
        ]
        replace = f" REPLACE ({', '.join(casts)})" if casts else ""
        parts.append(f"SELECT *{replace} FROM {relation}")
    return " UNION ALL BY NAME ".join(parts)
