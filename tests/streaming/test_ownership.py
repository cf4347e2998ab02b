"""Partition ownership: the stale filter, what a written batch may commit, and lag."""

from __future__ import annotations

from engine.streaming.ownership import Partitions


def test_ownership_follows_assignments_and_written_batches() -> None:
    owned = Partitions()
    owned.assign(("t", 0), 10)
    owned.assign(("t", 1), None)  # auto.offset.reset: no start, nothing stored yet
    assert (owned.owns(("t", 0)), owned.owns(("t", 2))) == (True, False)
    assert [owned.accepts(("t", 0), o) for o in (9, 10, 10, 12)] == [False, True, False, True]
    assert owned.accepts(("t", 1), 0) and not owned.accepts(("t", 2), 0)
    # A batch written after ("t", 1) was lost: only the owned partitions' offsets count.
    owned.forget([("t", 1)])
    assert owned.stored_now({("t", 0): 13, ("t", 1): 7}) == {("t", 0): 13}
    assert owned.stored_of([("t", 0), ("t", 1)]) == {("t", 0): 13}
    highs = {("t", 0): 20, ("t", 1): 99}
    assert owned.lag(highs.get) == 7
    assert owned.lag(lambda key: None) is None
    owned.assign(("t", 1), 90)
    assert owned.lag(highs.get) == 7 + 9
    owned.forget([("t", 0), ("t", 1)])
    assert owned.lag(highs.get) is None and owned.stored_of([("t", 0)]) == {}
