"""Run ids that do not collide between writers that never talk to each other.

A lake run id is a positive BIGINT, as in a DuckDB file (so ``export --run ID`` and the
reports work unchanged): the milliseconds since 2020 in its high 41 bits (ordered by start,
good for 69 years), 22 random bits below. Two writers collide only by starting in the same
millisecond and drawing the same 22 bits (one chance in four million for such a pair).
"""

from __future__ import annotations

import secrets
import time

EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
RANDOM_BITS = 22


def new_run_id() -> int:
    millis = int(time.time() * 1000) - EPOCH_MS
    return (millis << RANDOM_BITS) | secrets.randbits(RANDOM_BITS)
