"""Every DuckDB connection the engine opens installs and loads no extension by itself."""

from __future__ import annotations

from pathlib import Path

from engine.store.connect import connect
from engine.store.store import Store
from tests.conftest import ROOT

NO_AUTO = (
    "SELECT current_setting('autoinstall_known_extensions'), "
    "current_setting('autoload_known_extensions')"
)


def test_the_engine_opens_duckdb_through_connect_only() -> None:
    """A ``duckdb.connect`` elsewhere would get DuckDB's defaults: download and load a
    known extension the first time a query names one of its functions."""
    direct = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "engine").rglob("*.py"))
        if "duckdb.connect(" in path.read_text(encoding="utf-8")
    ]
    assert direct == ["engine/store/connect.py"]


def test_writers_readers_and_scratch_connections_load_no_extension(tmp_path: Path) -> None:
    with connect() as con:
        assert con.execute(NO_AUTO).fetchall() == [(False, False)]
    with connect(config={"threads": 1}) as con:  # the caller's settings are kept
        assert con.execute(NO_AUTO + ", current_setting('threads')").fetchall() == [
            (False, False, 1)
        ]
    with Store(tmp_path / "w.duckdb") as store:
        assert store.rows(NO_AUTO) == [(False, False)]
    with Store(tmp_path / "w.duckdb", read_only=True) as store:
        assert store.rows(NO_AUTO) == [(False, False)]
