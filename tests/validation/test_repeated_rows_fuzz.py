"""The model fuzzer on heavily repeated rows in small batches (about 30 seconds, fixed seed).

The plain fuzzer's rows are mostly distinct, so helpers computed once per distinct input
(``engine.validation.distinct``) rarely run there. ``tests/modelfuzz/repeated.py`` repeats
each drawn record 3-20 times with near duplicates (whitespace, case, leading zeros, ``+``,
``.0``, ``Z``/``+00:00``, non-ASCII digits), shuffles them, and has ``cli.py run`` read the
file in blocks of 4-256 KiB: several batches per file, most of them taking that path. Every
row must still get Pydantic's verdict, stored value and ordered error list.

Other seeds: ``REPEATED_SEED=N python -m pytest tests/validation/test_repeated_rows_fuzz.py``;
for as long as asked: ``python -m tests.modelfuzz.repeated --minutes 30 [--seed N]
[--no-one-digit]``.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.modelfuzz.repeated import run_session

SEED = int(os.environ.get("REPEATED_SEED", "20261205"))
EXAMPLES = int(os.environ.get("REPEATED_EXAMPLES", "12"))


def test_repeated_rows_in_small_batches_agree_with_pydantic(tmp_path: Path) -> None:
    # Near duplicates holding one non-ASCII digit included: they found datetime and time
    # fractions read with Unicode digits (test_unicode_digit_fractions.py, fixed).
    session = run_session(SEED, EXAMPLES, tmp_path, one_digit=True)
    shown = "\n\n".join(
        f"example {n} (kept in {tmp_path / f'ex{n}'}):\n" + "\n".join(d.render() for d in found[:3])
        for n, found in session.divergences.items()
    )
    assert not session.divergences, shown
    # The path under test did run: in most models Pydantic accepts, on many batches.
    assert session.examples == EXAMPLES
    assert session.took * 2 >= session.examples - session.refused
    assert session.batches >= 4 * session.took
    assert session.sampled > 0  # batches taller than two samples: the estimate decided
