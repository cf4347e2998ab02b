"""The model fuzzer on heavily repeated rows, in small batches: the distinct-input path.

The plain fuzzer's rows are mostly distinct, so helpers computed once per distinct input
(``engine.validation.distinct``) are rarely used. Here each drawn record is repeated 3-20
times, near duplicates are added (the same value with other whitespace, case, leading zeros,
a ``+``, a trailing ``.0``, ``Z`` for ``+00:00``, other digits), everything is shuffled, and
the CLI reads the file in small blocks, so that several batches of a few hundred rows each
repeat enough to take that path (one layout alternates repeated and unique records, so a
batch's sample may say "repeats" while the rest of the batch does not). Every row is then
compared with Pydantic exactly as ``tests.modelfuzz.fuzz.check`` does.

    python -m tests.modelfuzz.repeated --minutes 10 [--seed N]

prints each example's row count, how many fields took the distinct path, and every
divergence (shrunk is left to the caller: the whole case is written under ``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import random
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from random import Random
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from engine.cli import files as cli_files
from engine.sources import inputs
from engine.validation import helper_columns
from tests.modelfuzz.compare import Divergence
from tests.modelfuzz.fuzz import Case, check, make_case
from tests.modelfuzz.models import model_specs
from tests.modelfuzz.spec import ModelSpec

FULL_WIDTH = {ord(d): chr(0xFF10 + int(d)) for d in "0123456789"}
ARABIC_INDIC = {ord(d): chr(0x0660 + int(d)) for d in "0123456789"}
# A near duplicate with one digit in another script found datetime and time fractions read
# with Unicode digits (tests/validation/test_unicode_digit_fractions.py, fixed);
# ``one_digit=False`` (``--no-one-digit``) leaves such near duplicates out.
SPACES = [" ", "  ", "\t", "\u00a0", "\u2003", "\u3000"]


def near(value: str, rng: Random, one_digit: bool = True) -> str:
    """Another text that a normalisation before the distinct key might mistake for ``value``
    (``one_digit``: also one digit written in another script)."""
    forms: list[Callable[[str], str]] = [
        lambda s: rng.choice(SPACES) + s,
        lambda s: s + rng.choice(SPACES),
        lambda s: f" {s} ",
        str.upper,
        str.lower,
        str.swapcase,
        lambda s: "0" + s,
        lambda s: "+" + s,
        lambda s: "00" + s,
        lambda s: "-" + s,
        lambda s: s + ".0",
        lambda s: s + "0",
        lambda s: s + "e0",
        lambda s: s.replace("Z", "+00:00"),
        lambda s: s.replace("+00:00", "Z"),
        lambda s: s.replace("T", " ", 1),
        lambda s: s.replace("-", "", 4),
        lambda s: "{" + s + "}",
        lambda s: "urn:uuid:" + s,
        lambda s: s.translate(FULL_WIDTH),
        lambda s: s.translate(ARABIC_INDIC),
        lambda s: s.replace(".", ",", 1),
        lambda s: s.replace("0", "_0", 1) if "0" in s[1:] else s + "_",
        lambda s: s[1:] if s[:1] in "+0" else s,
        lambda s: s[:-2] if s.endswith(".0") else s,
    ]
    if one_digit:
        forms.append(lambda s: _one_digit(s, rng))
    return rng.choice(forms)(value)


def _one_digit(value: str, rng: Random) -> str:
    """``value`` with one ASCII digit written in another script (Arabic-Indic or full-width)."""
    places = [i for i, c in enumerate(value) if c in "0123456789"]
    if not places:
        return value
    i = rng.choice(places)
    table = rng.choice([ARABIC_INDIC, FULL_WIDTH])
    return value[:i] + value[i].translate(table) + value[i + 1 :]


def _near_json(value: Any, rng: Random, one_digit: bool) -> Any:
    if isinstance(value, str):
        return near(value, rng, one_digit)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return rng.choice([str(value), float(value), f"{value}.0", -value, value])
    if isinstance(value, float):
        return rng.choice([str(value), int(value) if value == value and abs(value) < 1e18 else 0])
    return value


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's pairs in order, duplicates kept."""


def near_line(line: str, rng: Random, one_digit: bool = True) -> str:
    """An NDJSON line with one value nudged (or the line itself if it is not an object)."""
    try:
        pairs = json.loads(line, object_pairs_hook=_Pairs)
    except ValueError:
        return line
    if not isinstance(pairs, _Pairs) or not pairs:
        return line
    i = rng.randrange(len(pairs))
    pairs[i] = (pairs[i][0], _near_json(pairs[i][1], rng, one_digit))
    return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"


def near_record(record: list[str], rng: Random, one_digit: bool = True) -> list[str]:
    out = list(record)
    filled = [i for i, v in enumerate(out) if v]
    if filled:
        i = rng.choice(filled)
        out[i] = near(out[i], rng, one_digit)
    return out


def _repeat(items: list[Any], nudge: Callable[[Any, Random], Any], rng: Random) -> list[Any]:
    """Each item 3-20 times, about one copy in five a near duplicate (itself repeated), shuffled;
    or (one layout in four) repeated items alternating with unique ones."""
    repeated: list[Any] = []
    for item in items:
        repeated += [item] * rng.randint(3, 20)
        for _ in range(rng.randint(0, 3)):
            repeated += [nudge(item, rng)] * rng.randint(1, 6)
    rng.shuffle(repeated)
    if rng.random() < 0.25 and items:
        # Even rows: a few values over and over; odd rows: each record once (nudged).
        few = [rng.choice(items) for _ in range(3)]
        uniques = [nudge(item, rng) for item in repeated]
        repeated = [x for u in uniques for x in (rng.choice(few), u)]
    return repeated


def repeated_case(case: Case, rng: Random, one_digit: bool = True) -> Case:
    return replace(
        case,
        records=_repeat(case.records, functools.partial(near_record, one_digit=one_digit), rng),
        lines=_repeat(case.lines, functools.partial(near_line, one_digit=one_digit), rng),
    )


@dataclass
class Taken:
    """How often the distinct path ran (fields x batches), and how often it gave up."""

    looks: int = 0  # batches x fields looked at
    heights: list[int] = field(default_factory=list)  # of the batches looked at
    calls: int = 0
    used: int = 0
    fields: Counter[str] = field(default_factory=Counter)


@contextlib.contextmanager
def small_batches(block_size: int, taken: Taken) -> Iterator[None]:
    """``cli.py run`` reading its input in blocks of ``block_size`` bytes (one batch each),
    and every use of the distinct path counted in ``taken``."""
    # Patched where they are looked up: the CLI's ``ingest`` and the helpers' distinct path.
    original_ingest = vars(cli_files)["ingest"]
    original_by_distinct = vars(helper_columns)["by_distinct"]
    original_repeats = vars(helper_columns)["repeats"]

    def repeats(frame: Any, columns: Any) -> bool:
        taken.looks += 1
        taken.heights.append(frame.height)
        return bool(original_repeats(frame, columns))

    def by_distinct(frame: Any, columns: Any, compute: Any, kept: Any) -> Any:
        taken.calls += 1
        result = original_by_distinct(frame, columns, compute, kept)
        if result is not None:
            taken.used += 1
            taken.fields.update(columns)
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            cli_files, "ingest", functools.partial(original_ingest, block_size=block_size)
        )
        # Whole blocks from the first: a run's first block is a 256th of its block size (at
        # least 64 KiB) and doubles as batches are counted, which kept 256 KiB blocks at
        # 64 KiB for most of a small file (no batch taller than the sample).
        patch.setattr(inputs, "RAMP", 1)
        patch.setattr(helper_columns, "by_distinct", by_distinct)
        patch.setattr(helper_columns, "repeats", repeats)
        yield


@dataclass
class Outcome:
    rows: int = 0
    refused: bool = False
    divergences: list[Divergence] = field(default_factory=list)
    taken: Taken = field(default_factory=Taken)
    case: Case | None = None


def examine_repeated(spec: ModelSpec, seed: int, workdir: Path, one_digit: bool = True) -> Outcome:
    """One drawn model's rows, repeated and nudged, in small batches, against Pydantic.
    One example in five reads blocks of 256 KiB from three times as many drawn rows: batches
    of thousands of rows, of which the decision to take the path sees a sample only."""
    rng = Random(seed)
    block = rng.choice([4 << 10, 8 << 10, 16 << 10, 64 << 10, 256 << 10])
    text_rows = 180 if block > 64 << 10 else 60
    case = make_case(spec, seed, workdir, text_rows, text_rows // 2)
    if case is None:
        return Outcome(refused=True)
    case = repeated_case(case, rng, one_digit)
    outcome = Outcome(rows=len(case.records) + len(case.lines), case=case)
    with small_batches(block, outcome.taken):
        outcome.divergences = check(case, workdir / "run")
    return outcome


@dataclass
class Session:
    """What a run of examples saw: counts, and each example's divergences (by example)."""

    examples: int = 0
    refused: int = 0
    rows: int = 0
    looked: int = 0  # examples where some field's inputs were looked at
    took: int = 0  # examples where the distinct path ran at least once
    batches: int = 0  # (field, batch) pairs computed by distinct input
    sampled: int = 0  # (field, batch) looks at a batch taller than the sample
    divergences: dict[int, list[Divergence]] = field(default_factory=dict)


def run_session(
    batch_seed: int,
    examples: int,
    workdir: Path,
    deadline: float | None = None,
    log: Callable[[str], None] | None = None,
    one_digit: bool = True,
) -> Session:
    """``examples`` drawn models (hypothesis, seeded with ``batch_seed``), each examined
    with repeated rows; stops early past ``deadline`` (``time.monotonic()``)."""
    session = Session()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis_seed(batch_seed)
    @given(spec=model_specs(), row_seed=st.integers(0, 2**32 - 1))
    def one(spec: ModelSpec, row_seed: int) -> None:
        if deadline is not None and time.monotonic() > deadline:
            return
        n = session.examples
        outcome = examine_repeated(spec, row_seed, workdir / f"ex{n}", one_digit)
        session.examples += 1
        session.refused += outcome.refused
        session.rows += outcome.rows
        session.looked += outcome.taken.looks > 0
        session.took += outcome.taken.used > 0
        session.batches += outcome.taken.used
        session.sampled += sum(h > 2048 for h in outcome.taken.heights)
        if outcome.divergences:
            session.divergences[n] = outcome.divergences
        if log is not None:
            shown = "refused" if outcome.refused else f"{outcome.rows} rows"
            log(
                f"#{n}: {shown}, distinct path in {outcome.taken.used} of "
                f"{outcome.taken.looks} looks (batch heights {outcome.taken.heights[:6]}), "
                f"{len(outcome.divergences)} divergences"
            )
            for d in outcome.divergences[:3]:
                log(d.render())
            if outcome.divergences:
                log(f"  case kept in {workdir / f'ex{n}'}")
        elif not outcome.divergences:
            shutil.rmtree(workdir / f"ex{n}", ignore_errors=True)

    one()
    return session


def _known(divergence: Divergence) -> str:
    """A label for the known divergence a near duplicate with a non-ASCII digit finds."""
    text = divergence.record + divergence.expected
    text += "".join(chr(int(code, 16)) for code in re.findall(r"\\u([0-9a-fA-F]{4})", text))
    return "(non-ASCII digit) " if any(c.isdigit() and not c.isascii() for c in text) else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--no-one-digit",
        action="store_true",
        help="no near duplicate with one non-ASCII digit (while test_unicode_digit_fractions fails)",
    )
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="repeated-")))
    args = parser.parse_args()
    deadline = time.monotonic() + args.minutes * 60
    batch_seed = args.seed if args.seed is not None else random.randrange(2**32)
    totals = Counter[str]()
    kinds = Counter[str]()
    while time.monotonic() < deadline:
        print(f"batch seed {batch_seed}", flush=True)
        out = args.out / str(batch_seed)
        session = run_session(
            batch_seed,
            10,
            out,
            deadline,
            lambda s: print(s, flush=True),
            one_digit=not args.no_one_digit,
        )
        for name in ("examples", "refused", "rows", "took", "batches", "sampled"):
            totals[name] += getattr(session, name)
        for found in session.divergences.values():
            kinds.update({f"{_known(d)}{d.fmt} | {d.signature}" for d in found})
        batch_seed = (batch_seed * 6364136223846793005 + 1442695040888963407) % 2**32
    print(
        f"{totals['examples']} models ({totals['refused']} refused by Pydantic), "
        f"{totals['rows']} rows; the distinct path ran in {totals['took']} models, "
        f"{totals['batches']} (field, batch) pairs; {totals['sampled']} looks at batches "
        f"taller than two samples",
        flush=True,
    )
    for kind, count in kinds.most_common():
        print(f"  {count} models: {kind}", flush=True)


if __name__ == "__main__":
    main()
