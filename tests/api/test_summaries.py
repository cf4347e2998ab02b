"""The server's run-by-run summary equals the summary computed from scratch, at every step.

Runs of generated rows (few distinct bad values, so that counts tie and the tie-breaks
matter), a failed run and a running one are added one by one; after each, the cache's
answer must be exactly ``engine.reports.summary.summary`` of the same database, also once
the distinct offending values pass the cache's limit (then read from DuckDB again).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.api.summaries import SummaryCache
from engine.pipeline import RunOptions, ingest_file
from engine.reports.summary import summary
from engine.schemas import load_schema
from engine.store.runs import RunStart, fail_run, start_run
from engine.store.store import Store

MODEL = load_schema("transactions")
AMOUNTS = ["10.5", "-1", "0", "abc", "-50.0", "1e400", "", "7"]
CURRENCIES = ["USD", "EUR", "JPY", "XXX", "usd", "", "€"]
CHANNELS = ["CHANNEL1", "", "ÜBER", "x" * 3]

rows = st.lists(
    st.tuples(st.sampled_from(AMOUNTS), st.sampled_from(CURRENCIES), st.sampled_from(CHANNELS)),
    min_size=1,
    max_size=25,
)


def write_run(path: Path, run: list[tuple[str, str, str]]) -> None:
    lines = ["external_id,amount,currency,source_channel,timestamp"]
    lines += [
        f"T{i},{amount},{currency},{channel},2024-01-01T00:00:00Z"
        for i, (amount, currency, channel) in enumerate(run)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def check(cache: SummaryCache, store: Store) -> None:
    cursor = store.cursor()
    try:
        assert cache.summary(cursor) == summary(cursor)
        assert cache.summary(cursor) == summary(cursor)  # cached: the same answer
    finally:
        cursor.close()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(runs=st.lists(rows, min_size=1, max_size=4), limit=st.sampled_from([3, 100_000]))
def test_the_cache_is_the_summary(
    tmp_path_factory: pytest.TempPathFactory, runs: list[list[tuple[str, str, str]]], limit: int
) -> None:
    work = tmp_path_factory.mktemp("summaries")
    cache = SummaryCache(max_values=limit)
    with Store(work / "s.duckdb") as store:
        check(cache, store)  # no runs yet
        for number, run in enumerate(runs):
            path = work / f"run{number}.csv"
            write_run(path, run)
            ingest_file(store, path, MODEL, RunOptions(force=True))
            check(cache, store)
        # A failed run and one still running change the runs, not the error figures.
        start = RunStart("file", "x.csv", "csv", "Transaction", "f", "processed_data")
        failed, started = start_run(store, start)
        fail_run(store, failed, started, "boom")
        start_run(store, start)
        check(cache, store)


def test_values_past_the_limit_come_from_duckdb(tmp_path: Path) -> None:
    cache = SummaryCache(max_values=2)
    with Store(tmp_path / "s.duckdb") as store:
        path = tmp_path / "a.csv"
        write_run(path, [("abc", "USD", "c"), ("-1", "XXX", "c"), ("0", "JPY", "c")])
        ingest_file(store, path, MODEL, RunOptions())
        cursor = store.cursor()
        found = cache.summary(cursor)
        cursor.close()
    assert cache._values is None  # dropped past the limit
    assert [(v.field, v.value, v.count) for v in found.top_values] == [
        ("amount", "-1", 1),
        ("amount", "0", 1),
        ("amount", "abc", 1),
        ("currency", "JPY", 1),
        ("currency", "XXX", 1),
    ]
    assert json.dumps([e.count for e in found.errors_by_field]) == "[2, 2, 1]"
