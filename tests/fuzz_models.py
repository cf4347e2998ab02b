"""Model-space differential fuzzing for as long as asked; each new failure becomes a test.

    python -m tests.fuzz_models --minutes 30 [--seed N] [--no-save] [--no-trap surrogate]

Draws random models from the README's supported grammar and adversarial rows for each, runs
``cli.py run`` on them as CSV and NDJSON, and compares every stored row with Pydantic. Each
kind of divergence not already saved under ``tests/validation/regressions/`` is shrunk and
saved there (``model.py``, the data file, ``divergence.txt``); ``test_fuzz_regressions.py``
replays every saved case. The batch seeds are printed: ``--seed`` replays a session.
Run one at a time (it uses a core and a half).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.modelfuzz.cases import REGRESSIONS, save, saved_keys
from tests.modelfuzz.explore import Settings, examine
from tests.modelfuzz.models import model_specs
from tests.modelfuzz.rows import TRAPS
from tests.modelfuzz.spec import ModelSpec

BATCH = 10  # examples per hypothesis batch (one seed each)


class Session:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.settings = Settings(
            text_rows=args.rows,
            typed_rows=args.rows // 2,
            traps=TRAPS - set(args.no_trap),
        )
        self.known = set() if args.no_save else saved_keys(args.out)
        self.seen: Counter[str] = Counter()
        self.examples = 0
        self.rows = 0
        self.started = time.monotonic()
        self.deadline = self.started + args.minutes * 60
        self.work = Path(tempfile.mkdtemp(prefix="modelfuzz-"))

    def example(self, spec: ModelSpec, row_seed: int, batch_seed: int) -> None:
        if time.monotonic() > self.deadline:
            return
        outcome = examine(spec, row_seed, self.work, self.settings, self.known | set(self.seen))
        self.examples += 1
        self.rows += outcome.rows
        keys = Counter(key for d in outcome.divergences for key in d.finding_keys())
        self.seen.update(keys)
        elapsed = time.monotonic() - self.started
        print(
            f"[{elapsed:6.0f}s] #{self.examples} (batch seed {batch_seed}): "
            f"{'model refused by Pydantic' if outcome.refused else f'{outcome.rows} rows'}, "
            f"{len(outcome.divergences)} divergences",
            flush=True,
        )
        for finding in outcome.findings:
            print(f"  new: {finding.key}", flush=True)
            if not self.args.no_save and finding.key not in self.known:
                note = f"python -m tests.fuzz_models --seed {batch_seed}"
                folder = save(finding.case, finding.divergences, finding.key, note, self.args.out)
                print(
                    f"  saved {folder.relative_to(Path.cwd()) if folder.is_relative_to(Path.cwd()) else folder}"
                )
            self.known.add(finding.key)

    def batch(self, batch_seed: int) -> None:
        @settings(
            max_examples=BATCH,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @seed(batch_seed)
        @given(spec=model_specs(), row_seed=st.integers(0, 2**32 - 1))
        def run(spec: ModelSpec, row_seed: int) -> None:
            self.example(spec, row_seed, batch_seed)

        run()

    def summary(self) -> None:
        minutes = (time.monotonic() - self.started) / 60
        print(f"\n{self.examples} models, {self.rows:,} rows in {minutes:.1f} min")
        print(f"{len(self.seen)} kinds of divergence (format | part: rows)")
        for key, count in self.seen.most_common():
            print(f"  {count:6d}  {key}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, help="first batch seed (default: random)")
    parser.add_argument("--rows", type=int, default=150, help="CSV records per model")
    parser.add_argument("--no-save", action="store_true", help="report only, save nothing")
    parser.add_argument(
        "--no-trap",
        action="append",
        default=[],
        choices=sorted(TRAPS),
        help="leave out one NDJSON trap (e.g. while its fix is pending); repeatable",
    )
    parser.add_argument("--out", type=Path, default=REGRESSIONS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    session = Session(args)
    batch_seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"fuzzing for {args.minutes} min from batch seed {batch_seed}; work in {session.work}")
    try:
        while time.monotonic() < session.deadline:
            session.batch(batch_seed)
            batch_seed += 1
    except KeyboardInterrupt:
        print("interrupted")
    session.summary()
    return 1 if session.seen else 0


if __name__ == "__main__":
    sys.exit(main())
