"""What the valid rows hold: a numeric column summed by the table's low-cardinality columns.

For the reference schema that is ``amount`` by ``currency`` and by ``source_channel``, and
the two crossed. Any other typed table gets the same treatment from its column types: the
first numeric field is the measure, text or boolean fields with few distinct values are
the groupings. A table with nothing to group by gets a note instead of charts.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.store.ddl import quote
from engine.store.store import Store

MAX_GROUPS = 12
MAX_DIMENSIONS = 2
REPEAT_SHARE = 0.8  # a grouping column has fewer distinct values than this share of rows
DIMENSION_TYPES = ("VARCHAR", "BOOLEAN")
INTEGER_PREFIXES = ("BIGINT", "INTEGER", "SMALLINT", "HUGEINT")
MEASURE_PREFIXES = ("DOUBLE", "FLOAT", "REAL", "DECIMAL", *INTEGER_PREFIXES)
KEYS = ("run_id", "row_number")
NULL_LABEL = "(null)"
OTHER_LABEL = "(other)"


@dataclass(frozen=True)
class Group:
    label: str
    rows: int
    total: float | None  # sum of the measure's finite values; None without a measure


@dataclass(frozen=True)
class Dimension:
    column: str
    groups: list[Group]


@dataclass(frozen=True)
class CrossTab:
    row_column: str
    column_column: str
    row_labels: list[str]
    column_labels: list[str]
    cells: list[list[float | None]]  # totals (or row counts without a measure)

    @property
    def top(self) -> float:
        return max((v for row in self.cells for v in row if v is not None), default=0.0)


@dataclass(frozen=True)
class Breakdown:
    table: str
    rows: int
    measure: str | None
    integral: bool  # the measure holds whole numbers (its totals too)
    dimensions: list[Dimension]
    cross: CrossTab | None
    non_finite: int  # measure values left out of the totals (NaN, infinities)
    note: str | None  # why there are no charts, when there are none


def breakdown(store: Store, table: str) -> Breakdown:
    columns = {name: kind for name, kind in store.table_columns(table).items() if name not in KEYS}
    source = quote(table)
    measure = next((n for n, k in columns.items() if k.startswith(MEASURE_PREFIXES)), None)
    integral = measure is not None and _integral(columns[measure])
    value = f"{quote(measure)}::DOUBLE" if measure else "NULL::DOUBLE"
    rows, non_finite = store.rows(
        f"SELECT count(*), count(*) FILTER ({value} IS NOT NULL AND NOT isfinite({value})) "
        f"FROM {source}"
    )[0]
    if rows == 0:
        return Breakdown(table, 0, measure, integral, [], None, 0, "no valid rows yet")
    candidates = [n for n, k in columns.items() if k in DIMENSION_TYPES]
    chosen: list[str] = []
    if candidates:
        counts = store.rows(
            "SELECT "
            + ", ".join(f"approx_count_distinct({quote(c)})" for c in candidates)
            + f" FROM {source}"
        )[0]
        # Few values, and values that repeat: a grouping, not an identifier.
        chosen = [
            c
            for c, n in zip(candidates, counts, strict=True)
            if n <= MAX_GROUPS and n <= REPEAT_SHARE * rows
        ][:MAX_DIMENSIONS]
    if not chosen:
        note = f"no text column with at most {MAX_GROUPS} distinct values to group {table} by"
        return Breakdown(table, int(rows), measure, integral, [], None, int(non_finite), note)
    total = f"sum({value}) FILTER (isfinite({value}))" if measure else "NULL"
    dimensions = [_dimension(store, source, column, total) for column in chosen]
    cross = _cross(store, source, dimensions, total, measure) if len(dimensions) == 2 else None
    return Breakdown(table, int(rows), measure, integral, dimensions, cross, int(non_finite), None)


def _integral(column_type: str) -> bool:
    """Integer types, and decimals of scale 0 (how the engine stores ints beyond 64 bits)."""
    return column_type.startswith(INTEGER_PREFIXES) or (
        column_type.startswith("DECIMAL") and column_type.replace(" ", "").endswith(",0)")
    )


def _label(column: str) -> str:
    return f"coalesce(CAST({quote(column)} AS VARCHAR), '{NULL_LABEL}')"


def _dimension(store: Store, source: str, column: str, total: str) -> Dimension:
    found = store.rows(
        f"SELECT {_label(column)} AS label, count(*) AS n, {total} AS total FROM {source} "
        "GROUP BY label ORDER BY total DESC NULLS LAST, n DESC, label"
    )
    groups = [Group(str(label), int(n), total_) for label, n, total_ in found]
    if len(groups) > MAX_GROUPS:
        rest = groups[MAX_GROUPS - 1 :]
        totals = [g.total for g in rest if g.total is not None]
        other = Group(OTHER_LABEL, sum(g.rows for g in rest), sum(totals) if totals else None)
        groups = [*groups[: MAX_GROUPS - 1], other]
    return Dimension(column, groups)


def _cross(
    store: Store, source: str, dimensions: list[Dimension], total: str, measure: str | None
) -> CrossTab:
    first, second = dimensions
    found = store.rows(
        f"SELECT {_label(first.column)}, {_label(second.column)}, count(*), {total} "
        f"FROM {source} GROUP BY ALL"
    )
    row_labels = [g.label for g in first.groups]
    column_labels = [g.label for g in second.groups]
    cells: list[list[float | None]] = [[None] * len(column_labels) for _ in row_labels]
    for a, b, n, total_ in found:
        i = row_labels.index(a) if a in row_labels else row_labels.index(OTHER_LABEL)
        j = column_labels.index(b) if b in column_labels else column_labels.index(OTHER_LABEL)
        value = float(total_ or 0.0) if measure else float(n)
        cells[i][j] = (cells[i][j] or 0.0) + value
    return CrossTab(first.column, second.column, row_labels, column_labels, cells)
