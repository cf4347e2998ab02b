"""The Store's bulk-load settings and the columns' compression chosen by a model."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from engine.errors import StoreError
from engine.pipeline import RunOptions, ingest_file
from engine.store.store import Store
from engine.validation.compiler import compile_schema
from schemas.transactions import Transaction
from tests.conftest import DATA


def settings(store: Store) -> tuple[str, str]:
    threads, memory = store.rows(
        "SELECT current_setting('threads'), current_setting('memory_limit')"
    )[0]
    return str(threads), str(memory)


def test_bulk_load_runs_on_one_thread_and_restores_the_settings(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb", memory_limit="300MB") as store:
        before = settings(store)
        assert before[1] == "286.1 MiB"
        with store.bulk_load():
            assert settings(store) == ("1", "122.0 MiB")
        assert settings(store) == before
        with pytest.raises(RuntimeError), store.bulk_load():
            raise RuntimeError("boom")
        assert settings(store) == before


def test_a_model_chooses_a_columns_compression(tmp_path: Path) -> None:
    with Store(tmp_path / "c.duckdb") as store:
        summary = ingest_file(store, DATA / "transactions_sample.csv", Transaction, RunOptions())
        assert summary.tally.valid == 7
        store.execute("CHECKPOINT")  # a small run sits in the WAL until then
        used = store.rows(
            "SELECT column_name, list(DISTINCT compression ORDER BY compression) "
            "FROM pragma_storage_info('processed_data') "
            "WHERE segment_type = 'VARCHAR' GROUP BY 1 ORDER BY 1"
        )
    chosen = dict(used)
    assert chosen["external_id"] == ["ZSTD"]
    assert chosen["currency"] != ["ZSTD"]


class BadMethod(BaseModel):
    __compression__ = {"key": "squeeze"}
    key: str


def test_an_unknown_compression_is_a_one_line_store_error(tmp_path: Path) -> None:
    with Store(tmp_path / "b.duckdb") as store, pytest.raises(StoreError) as raised:
        store.ensure_data_table(compile_schema(BadMethod, typed=False))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'b.duckdb'}: cannot create table 'bad_method': ")
    assert "squeeze" in message.lower()
