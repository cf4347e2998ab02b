"""One differential check: a model file and its data files through the CLI, against Pydantic.

A :class:`Case` is what a saved regression case holds: the model's source and the rows (CSV
records and/or NDJSON lines). :func:`check` writes them out, runs ``cli.py run`` on each file
into one DuckDB file, and lists every divergence from Pydantic. A record that crashes a whole
run is found by bisection, reported, and left out so that the other rows are still compared.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from random import Random
from typing import Any, Literal

from pydantic import BaseModel, PydanticUserError

from tests.modelfuzz import oracle
from tests.modelfuzz.cli_run import Stored, ingest
from tests.modelfuzz.compare import Divergence, compare_run
from tests.modelfuzz.rows import TRAPS, RowMaker
from tests.modelfuzz.source import load, render
from tests.modelfuzz.spec import ModelSpec

Format = Literal["csv", "ndjson"]
MAX_CRASHES = 5  # crashing records isolated per run
MAX_PROBES = 60  # runs spent finding them


@dataclass
class Case:
    source: str
    columns: list[str] = field(default_factory=list)
    records: list[list[str]] = field(default_factory=list)  # CSV records (none: no CSV file)
    lines: list[str] = field(default_factory=list)  # NDJSON lines (none: no NDJSON file)

    def formats(self) -> list[Format]:
        formats: list[Format] = []
        if self.records:
            formats.append("csv")
        if self.lines:
            formats.append("ndjson")
        return formats

    def texts(self, fmt: Format) -> list[str]:
        """Each record's text exactly as written (what raw_data must hold)."""
        if fmt == "ndjson":
            return list(self.lines)
        return [csv_line(record) for record in self.records]

    def file_text(self, fmt: Format) -> str:
        if fmt == "ndjson":
            return "".join(f"{line}\n" for line in self.lines)
        return "\n".join([csv_line(self.columns), *self.texts("csv")]) + "\n"

    def only(self, fmt: Format, keep: Sequence[int]) -> Case:
        """This case with one format and the records at ``keep`` (0-based) only."""
        if fmt == "csv":
            return replace(self, records=[self.records[i] for i in keep], lines=[])
        return replace(self, records=[], lines=[self.lines[i] for i in keep])

    def keep(self, fmt: Format, keep: Sequence[int]) -> Case:
        """This case with only the records at ``keep`` (0-based) of ``fmt``; the other
        format's records unchanged."""
        if fmt == "csv":
            return replace(self, records=[self.records[i] for i in keep])
        return replace(self, lines=[self.lines[i] for i in keep])

    def verdicts(self, fmt: Format, model: type[BaseModel]) -> list[oracle.Verdict]:
        if fmt == "csv":
            return [oracle.csv_verdict(model, self.columns, r) for r in self.records]
        return [oracle.ndjson_verdict(model, line) for line in self.lines]


# What Pydantic raises when it refuses a drawn model (a constraint it cannot apply, e.g.
# allow_inf_nan on a validator's schema): such a model is skipped, not a divergence.
REFUSED = (TypeError, ValueError, RuntimeError, PydanticUserError)


def csv_line(values: Sequence[str]) -> str:
    """One CSV record as Python's csv module writes it, lines ending in LF. Python quotes a
    field only for the line terminator's characters, so a record with a CR is all quoted."""
    out = io.StringIO()
    if any("\r" in v for v in values):
        csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL).writerow(values)
    else:
        csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()[:-1]


def make_case(
    spec: ModelSpec,
    seed: int,
    workdir: Path,
    text_rows: int,
    typed_rows: int,
    traps: frozenset[str] = TRAPS,
) -> Case | None:
    """Source and rows for ``spec``; None when Pydantic itself refuses the model."""
    source = render(spec, f"seed {seed}")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "model_for_rows.py"
    path.write_text(source, encoding="utf-8")
    try:
        model = load(path)
    except REFUSED:
        return None
    rows = RowMaker(spec, model, Random(seed), traps).rows(text_rows, typed_rows)
    return Case(source, rows.columns, rows.records, rows.lines)


def _ingest(case: Case, fmt: Format, model_path: Path, db: Path) -> Stored:
    path = model_path.parent / f"data.{fmt}"
    path.write_bytes(case.file_text(fmt).encode("utf-8"))
    return ingest(path, model_path, db, fmt)


def _crashing_records(
    case: Case, fmt: Format, keep: list[int], model_path: Path, crash_message: str
) -> dict[int, str]:
    """The records of ``keep`` that crash a run on their own (bisection), with the crash."""
    probe = model_path.parent / "probe.duckdb"
    found: dict[int, str] = {}
    budget = [MAX_PROBES]

    def crash(part: list[int]) -> str | None:
        budget[0] -= 1
        probe.unlink(missing_ok=True)
        return _ingest(case.only(fmt, part), fmt, model_path, probe).crash

    def search(part: list[int], known: str | None) -> None:
        if len(part) == 1:
            if known is not None:
                found[part[0]] = known
            return
        half = len(part) // 2
        for piece in (part[:half], part[half:]):
            if budget[0] > 0 and len(found) < MAX_CRASHES:
                message = crash(piece)
                if message is not None:
                    search(piece, message)

    search(keep, crash_message)
    return found


def check(case: Case, workdir: Path) -> list[Divergence]:
    """Every divergence between the engine (through the CLI and DuckDB) and Pydantic."""
    workdir.mkdir(parents=True, exist_ok=True)
    model_path = workdir / "model.py"
    model_path.write_text(case.source, encoding="utf-8")
    model = load(model_path)
    db = workdir / "fuzz.duckdb"
    db.unlink(missing_ok=True)
    unique = oracle.unique_key(model)
    seen: dict[Any, tuple[int, int]] = {}
    out: list[Divergence] = []
    for fmt in case.formats():
        texts = case.texts(fmt)
        keep = list(range(len(texts)))
        stored = _ingest(case.only(fmt, keep), fmt, model_path, db)
        if stored.crash is not None:
            culprits = _crashing_records(case, fmt, keep, model_path, stored.crash)
            for culprit, crash in sorted(culprits.items()):
                sig = f"crash {crash.split(':')[0]}"
                out.append(
                    Divergence(fmt, culprit + 1, "crash", texts[culprit], "no crash", crash, sig)
                )
            if culprits:
                keep = [i for i in keep if i not in culprits]
                stored = _ingest(case.only(fmt, keep), fmt, model_path, db)
        part = case.only(fmt, keep)
        verdicts = part.verdicts(fmt, model)
        if unique is not None and stored.run:
            oracle.unique_errors(verdicts, unique, seen, int(stored.run["run_id"]), model)
        found = compare_run(fmt, model, part.texts(fmt), verdicts, stored)
        out += [replace(d, row=keep[d.row - 1] + 1) if d.row else d for d in found]
    return out
