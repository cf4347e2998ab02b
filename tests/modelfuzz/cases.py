"""A failure, shrunk and saved: the smallest model and rows that still show the same divergence,
written to ``tests/validation/regressions/<name>/`` (``model.py``, ``data.csv`` or
``data.ndjson``, ``divergence.txt``), where ``test_fuzz_regressions.py`` replays it forever."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.modelfuzz.compare import Divergence
from tests.modelfuzz.fuzz import Case, Format, check
from tests.modelfuzz.source import render
from tests.modelfuzz.spec import ModelSpec

REGRESSIONS = Path(__file__).resolve().parent.parent / "validation" / "regressions"


def _simpler_specs(spec: ModelSpec) -> Iterator[ModelSpec]:
    """Each one-step simplification of a model, biggest first."""
    for f in spec.fields:
        if len(spec.fields) > 1:
            yield spec.without(f.name)
    for simpler in (
        replace(spec, check=None),
        replace(spec, unique=None),
        replace(spec, extra=None),
        replace(spec, strip=False),
        replace(spec, strict=False),
        replace(spec, by_name=None),
    ):
        if simpler != spec:
            yield simpler
    for i, f in enumerate(spec.fields):
        kept = tuple((k, v) for k, v in f.constraints if k == "decimal_places")
        for simpler_field in (
            replace(f, validator=None),
            replace(f, constraints=kept),
            replace(f, string_ops=()),
            replace(f, strict=None),
            replace(f, placement="field"),
            replace(f, default=None, optional=False),
            replace(f, alias=None),
        ):
            if simpler_field != f:
                yield replace(spec, fields=(*spec.fields[:i], simpler_field, *spec.fields[i + 1 :]))


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's pairs in order, duplicates kept."""


def _pairs(line: str) -> _Pairs | None:
    try:
        value = json.loads(line, object_pairs_hook=_Pairs)
    except ValueError:
        return None
    return value if isinstance(value, _Pairs) else None


def _plain(value: Any) -> Any:
    if isinstance(value, _Pairs):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _line(pairs: list[tuple[str, Any]]) -> str:
    return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(_plain(v))}" for k, v in pairs) + "}"


def _drop_columns(case: Case, keys: set[str]) -> Case:
    keep = [i for i, c in enumerate(case.columns) if c not in keys]
    return replace(
        case,
        columns=[case.columns[i] for i in keep],
        records=[[r[i] for i in keep] for r in case.records],
    )


def _follow(case: Case, before: ModelSpec, after: ModelSpec) -> Case:
    """The CSV columns after a simplification: a dropped field's columns go, a dropped alias's
    first column is renamed to the field's name."""
    kept = {f.name: f for f in after.fields}
    columns = list(case.columns)
    dropped: set[str] = set()
    for f in before.fields:
        if f.name not in kept:
            dropped |= {f.name, *f.aliases}
        elif f.aliases and not kept[f.name].aliases:
            if f.name in columns:
                dropped |= set(f.aliases)
            elif f.aliases[0] in columns:
                columns[columns.index(f.aliases[0])] = f.name
                dropped |= set(f.aliases[1:])
    dropped -= {k for f in after.fields for k in (f.name, *f.aliases)}
    return _drop_columns(replace(case, columns=columns), dropped)


class Shrinker:
    """Greedy reduction under a budget of checks; a step is kept if the divergence remains."""

    def __init__(self, target: Divergence, key: str, workdir: Path, budget: int) -> None:
        self.target = target
        self.key = key
        self.workdir = workdir
        self.budget = budget
        self.last: list[Divergence] = []

    def reproduces(self, case: Case) -> bool:
        if self.budget <= 0:
            return False
        self.budget -= 1
        found = check(case, self.workdir)
        hits = [d for d in found if self.key in d.finding_keys()]
        if hits:
            self.last = hits
        return bool(hits)

    def rows(self, case: Case) -> Case:
        """The target's record alone if that is enough; else fewer records of its format,
        then of the other format's run if the finding needs it (an NDJSON duplicate of a key
        the CSV run stored), or without that run if it does not."""
        fmt: Format = self.target.fmt  # type: ignore[assignment]
        if self.target.row is not None:
            single = case.only(fmt, [self.target.row - 1])
            if self.reproduces(single):
                return single
        case = self._fewer(case, fmt)
        other: Format = "ndjson" if fmt == "csv" else "csv"
        if other not in case.formats():
            return case
        alone = case.only(fmt, range(len(case.records if fmt == "csv" else case.lines)))
        return alone if self.reproduces(alone) else self._fewer(case, other)

    def _fewer(self, case: Case, fmt: Format) -> Case:
        """Drop chunks of ``fmt``'s records, halving the chunk, while the finding remains."""
        indices = list(range(len(case.records if fmt == "csv" else case.lines)))
        chunk = max(len(indices) // 2, 1)
        while chunk >= 1 and self.budget > 0:
            start = 0
            while start < len(indices) and self.budget > 0:
                trial = indices[:start] + indices[start + chunk :]
                if trial and self.reproduces(case.keep(fmt, trial)):
                    indices = trial
                else:
                    start += chunk
            chunk //= 2
        return case.keep(fmt, indices)

    def model(self, case: Case, spec: ModelSpec) -> tuple[Case, ModelSpec]:
        improved = True
        while improved and self.budget > 0:
            improved = False
            for simpler in _simpler_specs(spec):
                trial = _follow(replace(case, source=render(simpler, "shrunk")), spec, simpler)
                if self.reproduces(trial):
                    case, spec, improved = trial, simpler, True
                    break
        return case, spec

    def lines(self, case: Case) -> Case:
        """Drop the keys of NDJSON objects one at a time (valid JSON lines only)."""
        for i in range(len(case.lines)):
            pairs = _pairs(case.lines[i])
            if pairs is None:
                continue
            j = 0
            while j < len(pairs) and self.budget > 0:
                fewer = _Pairs(pairs[:j] + pairs[j + 1 :])
                trial = replace(case, lines=[*case.lines[:i], _line(fewer), *case.lines[i + 1 :]])
                if self.reproduces(trial):
                    case, pairs = trial, fewer
                else:
                    j += 1
        return case

    def columns(self, case: Case) -> Case:
        for column in list(case.columns):
            if all(r[case.columns.index(column)] == "" for r in case.records):
                trial = _drop_columns(case, {column})
                if self.reproduces(trial):
                    case = trial
        return case


def shrink(
    case: Case,
    target: Divergence,
    key: str,
    workdir: Path,
    spec: ModelSpec | None,
    budget: int = 60,
) -> tuple[Case, list[Divergence], ModelSpec | None]:
    """The smallest case found that still shows ``key`` (one of ``target``'s keys)."""
    shrinker = Shrinker(target, key, workdir / "shrink", budget)
    case = shrinker.rows(case)
    if spec is not None:
        case, spec = shrinker.model(case, spec)
    if case.records:
        case = shrinker.columns(case)
    if case.lines:
        case = shrinker.lines(case)
    if not shrinker.last:
        shrinker.budget = 1
        shrinker.reproduces(case)
    return case, shrinker.last or [target], spec


def key_of(divergence: Divergence) -> str:
    """What makes two failures the same finding: the format and the kind of divergence."""
    return divergence.finding_keys()[0]


def saved_keys(root: Path = REGRESSIONS) -> set[str]:
    keys = set()
    for path in root.glob("*/divergence.txt"):
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        if first and first[0].startswith("key: "):
            keys.add(first[0][5:])
    return keys


def save(
    case: Case, divergences: list[Divergence], key: str, note: str, root: Path = REGRESSIONS
) -> Path:
    fmt = divergences[0].fmt
    data = "".join(case.file_text(f) for f in case.formats())
    digest = hashlib.sha256((case.source + data).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9]+", "_", key.split(" | ", 1)[-1].lower()).strip("_")[:48]
    folder = root / f"{fmt}_{slug}_{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(case.source, encoding="utf-8")
    for f in case.formats():  # both files when the finding needs both runs (unique keys)
        (folder / f"data.{f}").write_bytes(case.file_text(f).encode("utf-8"))
    text = [f"key: {key}", f"found by: {note}", ""] + [d.render() for d in divergences]
    (folder / "divergence.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    return folder


def load_case(folder: Path) -> Case:
    """A saved case, read back byte for byte (no newline translation)."""
    source = (folder / "model.py").read_text(encoding="utf-8")
    case = Case(source)
    csv_path, ndjson_path = folder / "data.csv", folder / "data.ndjson"
    if csv_path.exists():
        rows = list(csv.reader(io.StringIO(csv_path.read_bytes().decode("utf-8"), newline="")))
        case.columns, case.records = rows[0], rows[1:]
    if ndjson_path.exists():
        case.lines = ndjson_path.read_bytes().decode("utf-8").split("\n")[:-1]
    return case
