"""Row by row: Pydantic's verdict against what the engine stored; and the run's invariants.

The only accepted differences are the README's documented storage errors: a value Pydantic
accepts that its column cannot hold (an int or decimal too large, a datetime outside years
1-9999 in UTC, a lone surrogate) makes the row invalid with exactly those errors
(``storage.py``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel

from tests.modelfuzz.cli_run import Stored
from tests.modelfuzz.oracle import NO_VERDICT, Error, Verdict, normalise, same
from tests.modelfuzz.storage import storage_limited


@dataclass(frozen=True)
class Divergence:
    fmt: str
    row: int | None  # None: about the whole run
    kind: str  # crash, exit, invariant, verdict, value, errors
    record: str
    expected: str
    got: str
    # What kind of divergence, without the values, to group findings: "; "-separated
    # independent parts (e.g. "errors -bound; errors +timezone_naive").
    signature: str = ""

    def finding_keys(self) -> list[str]:
        """One key per independent part: "format | part"."""
        return [f"{self.fmt} | {part}" for part in self.signature.split("; ")]

    def render(self) -> str:
        where = f"{self.fmt} row {self.row}" if self.row is not None else f"{self.fmt} run"
        return (
            f"[{self.kind}] {where}\n  record:   {self.record!r}\n"
            f"  expected: {self.expected}\n  got:      {self.got}"
        )


def error_signature(expected: Sequence[Error], got: Sequence[Error]) -> str:
    """Which parts of the error list differ: types missing or extra, order, loc, msg, input."""
    want, have = Counter(_grouped(e[0]) for e in expected), Counter(_grouped(g[0]) for g in got)
    if want != have:
        parts = [f"errors -{t}" for t in sorted(set((want - have).elements()))]
        parts += [f"errors +{t}" for t in sorted(set((have - want).elements()))]
        return "; ".join(parts)
    if [e[0] for e in expected] != [g[0] for g in got]:
        order = ",".join(e[0] for e in expected) + " -> " + ",".join(g[0] for g in got)
        return f"errors order {order}"
    parts = []
    for e, g in zip(expected, got, strict=True):
        if e[1] != g[1]:
            parts.append(f"errors loc of {e[0]}")
        if e[2] != g[2]:
            parts.append(f"errors msg of {e[0]}")
        if not same(e[3], g[3]):
            parts.append("errors " + _input_difference(e, g))
    return "; ".join(dict.fromkeys(parts))


def _input_difference(expected: Error, got: Error) -> str:
    """How an error's input differs, in words that group one cause across error types."""
    want, have = expected[3], got[3]
    if have is None:
        return "input null"
    if isinstance(have, str) and not isinstance(want, str):
        return "input a string for a JSON " + type(want).__name__
    if isinstance(want, str) and isinstance(have, str):
        return f"input another string ({expected[0]})"
    return f"input {type(want).__name__} -> {type(have).__name__}"


BOUNDS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _grouped(kind: str) -> str:
    return "bound" if kind in BOUNDS else kind


def show_errors(errors: Sequence[Error]) -> str:
    return (
        "["
        + ", ".join(f"({t}, {'.'.join(loc) or '()'}, {m!r}, {i!r})" for t, loc, m, i in errors)
        + "]"
    )


def _same_errors(expected: Sequence[Error], got: Sequence[Error]) -> bool:
    return len(expected) == len(got) and all(
        e[:3] == g[:3] and same(e[3], g[3]) for e, g in zip(expected, got, strict=True)
    )


def _values_differ(expected: dict[str, Any], got: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    keys = list(dict.fromkeys([*expected, *got]))
    return {
        k: (expected.get(k, "<no column>"), got.get(k, "<no column>"))
        for k in keys
        if not (k in expected and k in got and same(expected[k], got[k]))
    }


def invariants(fmt: str, records: Sequence[str], stored: Stored) -> list[Divergence]:
    """Every row in raw_data once, with its exact text, and in exactly one of the two tables."""
    problems: list[str] = []
    n = len(records)
    run = stored.run
    if run.get("status") != "completed":
        problems.append(f"status {run.get('status')!r} ({run.get('message')!r})")
    counts = (run.get("rows_total"), run.get("rows_valid"), run.get("rows_invalid"))
    actual = (n, len(stored.valid_numbers), len(stored.invalid_numbers))
    if counts != actual:
        problems.append(f"ingestion_runs counts {counts}, expected {actual}")
    if run.get("blank_lines"):
        problems.append(f"blank_lines {run.get('blank_lines')}")
    numbers = [number for number, _ in stored.raw]
    if numbers != list(range(1, n + 1)):
        problems.append(f"raw_data row numbers {Counter(numbers).most_common(3)} for {n} rows")
    both = Counter(stored.valid_numbers) + Counter(stored.invalid_numbers)
    if sorted(both.elements()) != list(range(1, n + 1)):
        missing = sorted(set(range(1, n + 1)) - set(both))[:5]
        twice = [k for k, c in both.items() if c > 1][:5]
        problems.append(f"typed+errors rows: missing {missing}, more than once {twice}")
    out = [
        Divergence(fmt, None, "invariant", "", "", p, f"invariant {p.split()[0]}") for p in problems
    ]
    for number, raw in stored.raw:
        if 1 <= number <= n and raw != records[number - 1]:
            out.append(
                Divergence(
                    fmt,
                    number,
                    "invariant",
                    records[number - 1],
                    "raw text kept",
                    repr(raw),
                    "invariant raw text",
                )
            )
        if number in stored.invalid_raw and stored.invalid_raw[number] != raw:
            out.append(
                Divergence(
                    fmt,
                    number,
                    "invariant",
                    raw,
                    "ingestion_errors.raw = raw_data.raw",
                    repr(stored.invalid_raw[number]),
                    "invariant error raw",
                )
            )
    return out


def _kinds(values: dict[str, tuple[Any, Any]]) -> str:
    pairs = sorted({type(e).__name__ + "/" + type(g).__name__ for e, g in values.values()})
    return "; ".join(f"value {p}" for p in pairs)


def compare_run(
    fmt: str,
    model: type[BaseModel],
    records: Sequence[str],
    verdicts: Sequence[Verdict],
    stored: Stored,
) -> list[Divergence]:
    """Divergences of one run, each row numbered as in ``records`` (1-based)."""
    if stored.crash is not None:
        return [
            Divergence(
                fmt,
                None,
                "crash",
                "",
                "no crash",
                stored.crash,
                f"crash {stored.crash.split(':')[0]}",
            )
        ]
    if stored.exit_code != 0 or not stored.run:
        shown_exit = f"{stored.exit_code}: {stored.output.strip()[-500:]}"
        signature = f"exit {stored.exit_code}: {_exit_reason(stored.output)}"
        return [Divergence(fmt, None, "exit", "", "exit code 0", shown_exit, signature)]
    out = invariants(fmt, records, stored)
    rows = _rows(fmt, model, records, verdicts, stored)
    by_trap = {n: v.trap for n, v in enumerate(verdicts, start=1) if v.trap}
    return out + [
        replace(d, signature=f"{by_trap[d.row]}: {d.kind}") if d.row in by_trap else d for d in rows
    ]


def _rows(
    fmt: str,
    model: type[BaseModel],
    records: Sequence[str],
    verdicts: Sequence[Verdict],
    stored: Stored,
) -> list[Divergence]:
    out: list[Divergence] = []
    for number, (record, expected) in enumerate(zip(records, verdicts, strict=True), start=1):
        if expected.trap == NO_VERDICT:
            continue
        if number in stored.valid:
            got_values = {k: normalise(v) for k, v in stored.valid[number].items()}
            if not expected.valid:
                sig = "; ".join(
                    f"verdict {t} -> valid"
                    for t in sorted({_grouped(e[0]) for e in expected.errors})
                )
                out.append(
                    Divergence(
                        fmt,
                        number,
                        "verdict",
                        record,
                        show_errors(expected.errors),
                        f"valid {got_values}",
                        sig,
                    )
                )
                continue
            differ = _values_differ(expected.values, got_values)
            if differ:
                shown = ", ".join(f"{k}: {e!r} vs {g!r}" for k, (e, g) in differ.items())
                out.append(
                    Divergence(
                        fmt,
                        number,
                        "value",
                        record,
                        "stored values equal",
                        shown,
                        _kinds(differ),
                    )
                )
        elif number in stored.invalid:
            got = stored.invalid[number]
            if expected.valid:
                if not storage_limited(model, expected, got):
                    sig = "; ".join(f"verdict valid -> {t}" for t in sorted({g[0] for g in got}))
                    out.append(
                        Divergence(
                            fmt,
                            number,
                            "verdict",
                            record,
                            f"valid {expected.values}",
                            show_errors(got),
                            sig,
                        )
                    )
            elif not _same_errors(expected.errors, got):
                sig = error_signature(expected.errors, got)
                out.append(
                    Divergence(
                        fmt,
                        number,
                        "errors",
                        record,
                        show_errors(expected.errors),
                        show_errors(got),
                        sig,
                    )
                )
    return out


def _exit_reason(output: str) -> str:
    """A failed run's one line, without what varies from case to case (the input's path or
    the schema's name, quoted names, the hint): so that one known reason does not hide
    another."""
    lines = output.strip().splitlines()
    line = lines[-1].removeprefix("error: ") if lines else ""
    reason = line.split(": ", 1)[1] if ": " in line else line
    reason = re.sub(r"\(.*$", "", reason)
    return re.sub(r"'[^']*'", "'…'", reason).strip()[:80]
