"""Model-space differential fuzzing under a CI budget (about half a minute).

Hypothesis draws random models from the README's supported grammar and a seed for their
adversarial rows (``tests/modelfuzz``); each model's rows go through ``cli.py run`` as CSV and
as NDJSON into a real DuckDB file, and every row must get Pydantic's verdict, stored value and
ordered error list (type, loc, msg, input). A failure is shrunk before it is reported.

The seed is fixed so CI is reproducible; ``MODELFUZZ_EXAMPLES=50`` draws more models (25 by
default). To explore other seeds:
``MODELFUZZ_SEED=7 python -m pytest tests/validation/test_model_fuzz.py``, or for longer runs
that save each new failure as a regression case: ``python -m tests.fuzz_models --minutes 30``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.modelfuzz.explore import Settings, examine
from tests.modelfuzz.models import model_specs
from tests.modelfuzz.spec import ModelSpec

SEED = int(os.environ.get("MODELFUZZ_SEED", "20261204"))
EXAMPLES = int(os.environ.get("MODELFUZZ_EXAMPLES", "25"))
BUDGET = Settings(text_rows=120, typed_rows=60, shrink_budget=30, findings_per_example=1)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # No hypothesis shrinking: each step would be a CLI run; the failure is shrunk by
    # tests/modelfuzz/cases.py instead (rows, then fields, constraints and options).
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@seed(SEED)
@given(spec=model_specs(), row_seed=st.integers(0, 2**32 - 1))
def test_random_models_agree_with_pydantic(spec: ModelSpec, row_seed: int) -> None:
    with tempfile.TemporaryDirectory(prefix="modelfuzz-") as tmp:
        outcome = examine(spec, row_seed, Path(tmp), BUDGET)
    if outcome.divergences:
        kinds = sorted({f"{d.fmt} | {d.signature}" for d in outcome.divergences})
        shrunk = "\n\n".join(f.render() for f in outcome.findings)
        raise AssertionError(
            f"{len(outcome.divergences)} of {outcome.rows} rows diverge from Pydantic; "
            f"kinds: {kinds}\n\nshrunk:\n{shrunk}"
        )
