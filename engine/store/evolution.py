"""What changes between a stored table and the model that is about to write into it.

Store-independent: it compares two column maps (name -> SQL type, as DuckDB names them) and
says what the table must become, or why it cannot. The DuckDB store applies the plan with
``ALTER TABLE`` (``engine.store.versions``); another store can apply the same plan its way.

Allowed (the table is altered, old rows keep their values):
- a field the table lacks: a new nullable column (old rows NULL); refused for a required field
  (no default) when the table already has rows, which would be NULL where the model forbids it;
- a wider type: INTEGER to BIGINT, an integer (an integer type, or DECIMAL(p,0): a model's
  ``int`` without bounds) to DOUBLE, an integer to a DECIMAL with room for its digits, a
  DECIMAL to one with at least as many digits on each side of the point;
- a field the model no longer has: the column is kept (nullable), new rows store NULL in it.

Refused (with what and how): any other type change (a narrowing, or a change of kind), a new
required field over stored rows, and a changed unique key over stored rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

ChangeKind = Literal["add", "widen", "keep"]

_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
# Decimal digits an integer type needs.
_INTEGER_DIGITS = {"TINYINT": 3, "SMALLINT": 5, "INTEGER": 10, "BIGINT": 19, "HUGEINT": 39}
_INTEGER_ORDER = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")


@dataclass(frozen=True)
class Change:
    """One column's change: ``add`` (a new nullable column), ``widen`` (a wider type), ``keep``
    (a column the model no longer has, kept nullable)."""

    kind: ChangeKind
    column: str
    old: str | None  # the stored type (None for an added column)
    new: str | None  # the model's type (None for a kept column)

    def describe(self) -> str:
        if self.kind == "add":
            return f"added {self.column} {self.new} (old rows NULL)"
        if self.kind == "widen":
            return f"widened {self.column} from {self.old} to {self.new}"
        return f"kept {self.column} {self.old} (no longer in the model: new rows NULL)"


@dataclass(frozen=True)
class Plan:
    """What to do to the stored table for the model: ``changes`` to apply, or ``refusals``
    (one phrase each) when the model cannot write into it as it is."""

    changes: tuple[Change, ...] = ()
    refusals: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = field(default=())

    @property
    def compatible(self) -> bool:
        return not self.refusals

    def summary(self) -> str:
        return "; ".join(change.describe() for change in self.changes) or "no change"


def decimal_digits(kind: str) -> tuple[int, int] | None:
    """(digits before the point, digits after) of a DECIMAL(p,s) type, or of an integer type."""
    found = _DECIMAL.fullmatch(kind.strip())
    if found:
        precision, scale = int(found.group(1)), int(found.group(2))
        return precision - scale, scale
    if kind in _INTEGER_DIGITS:
        return _INTEGER_DIGITS[kind], 0
    return None


def widens(old: str, new: str) -> bool:
    """Every value of type ``old`` is a value of type ``new`` (DOUBLE counts for integers, as
    the issue of int-to-float widening asks; it is exact up to 2**53)."""
    if old == new:
        return True
    if old in _INTEGER_DIGITS:
        if new in _INTEGER_DIGITS:
            return _INTEGER_ORDER.index(new) >= _INTEGER_ORDER.index(old)
        if new in ("DOUBLE", "FLOAT") and old != "HUGEINT":
            return True
    digits = decimal_digits(old)
    if new in ("DOUBLE", "FLOAT") and digits is not None and digits[1] == 0:
        return True  # a model's ``int`` without bounds is stored as DECIMAL(38,0)
    if digits is not None and new in _INTEGER_DIGITS and old not in _INTEGER_DIGITS:
        return digits[1] == 0 and digits[0] < _INTEGER_DIGITS[new]  # DECIMAL(p,0) to an integer
    if old.startswith("DECIMAL") or old in _INTEGER_DIGITS:
        before, after = decimal_digits(old) or (0, 0)
        wider = decimal_digits(new) if new.startswith("DECIMAL") else None
        return wider is not None and wider[0] >= before and wider[1] >= after
    return old == "FLOAT" and new == "DOUBLE"


def case_clashes(stored: Iterable[str], wanted: Iterable[str]) -> tuple[str, ...]:
    """Phrases naming the model's fields (``wanted``) whose names equal another field's, or a
    stored column's, ignoring case only: DuckDB's and Delta's names ignore case, so a table
    cannot hold both (and no plan can say which one is meant)."""
    phrases: list[str] = []
    fields: dict[str, str] = {}
    for name in wanted:
        other = fields.setdefault(name.lower(), name)
        if other != name:
            phrases.append(f"fields {other} and {name}")
    columns = {name.lower(): name for name in stored}
    for name in fields.values():
        column = columns.get(name.lower())
        if column is not None and column != name:
            phrases.append(f"field {name} and the table's column {column}")
    return tuple(phrases)


def plan_evolution(
    stored: Mapping[str, str],
    wanted: Mapping[str, str],
    *,
    required: Sequence[str] = (),
    stored_rows: int = 0,
    stored_unique: Sequence[str] | None = None,
    wanted_unique: Sequence[str] = (),
) -> Plan:
    """Compare the stored table's columns (the engine's ``run_id`` and ``row_number`` left
    out) with the model's; ``stored_unique`` None when the stored key is not known."""
    changes: list[Change] = []
    refusals: list[str] = []
    unchanged: list[str] = []
    for name, kind in wanted.items():
        old = stored.get(name)
        if old is None:
            if name in required and stored_rows:
                refusals.append(
                    f"new required field {name} ({kind}, no default) would be NULL in the "
                    f"{stored_rows:,} stored rows"
                )
            else:
                changes.append(Change("add", name, None, kind))
        elif old == kind:
            unchanged.append(name)
        elif widens(old, kind):
            changes.append(Change("widen", name, old, kind))
        else:
            narrowing = widens(kind, old)
            refusals.append(
                f"{name} is {old} in the table, the model "
                f"{'narrows it to' if narrowing else 'changes it to'} {kind}"
            )
    changes.extend(
        Change("keep", name, kind, None) for name, kind in stored.items() if name not in wanted
    )
    if stored_unique is not None and stored_rows and tuple(stored_unique) != tuple(wanted_unique):
        before = ", ".join(stored_unique) or "none"
        after = ", ".join(wanted_unique) or "none"
        refusals.append(f"the unique key changes from ({before}) to ({after}) over stored rows")
    return Plan(tuple(changes), tuple(refusals), tuple(unchanged))
