"""engine.ingest refuses arguments it cannot use with one ConfigError line, before it creates
the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import engine
from engine.errors import ConfigError
from schemas.transactions import Transaction


@pytest.mark.parametrize(
    ("source", "context", "message"),
    [
        (
            b"external_id\nT-1\n",
            None,
            "cannot ingest a bytes: give a path, a URL, '-', a file object, a DataFrame, an "
            "Arrow table or an iterable of dicts",
        ),
        (
            {"external_id": "T-1"},
            None,
            "cannot ingest a dict: give a path, a URL, '-', a file object, a DataFrame, an "
            "Arrow table or an iterable of dicts",
        ),
        (
            [{"external_id": "T-1"}],
            "team=ops",
            "context must be a mapping of names to values (a dict), not a str",
        ),
    ],
)
def test_unusable_arguments_are_one_config_error(
    tmp_path: Path, source: Any, context: Any, message: str
) -> None:
    db = tmp_path / "t.duckdb"
    with pytest.raises(ConfigError) as raised:
        engine.ingest(source, db=db, schema=Transaction, context=context)
    assert str(raised.value) == message
    assert not db.exists()
