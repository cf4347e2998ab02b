"""What the tests of a table's life share: the CLI (run in the test process), and a model evolved
three times (plus an incompatible one), written as a Python file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT
from tests.inprocess import run_cli

MODELS = """
from decimal import Decimal

from pydantic import BaseModel, Field


class V1(BaseModel):
    __table_name__ = "readings"
    __unique__ = ("rid",)
    rid: str
    value: int
    legacy: str | None = None


class V2(BaseModel):  # adds note (optional), widens value from int to float
    __table_name__ = "readings"
    __unique__ = ("rid",)
    rid: str
    value: float
    legacy: str | None = None
    note: str | None = None


class V3(BaseModel):  # drops legacy, adds price
    __table_name__ = "readings"
    __unique__ = ("rid",)
    rid: str
    value: float
    note: str | None = None
    price: Decimal | None = Field(default=None, max_digits=8, decimal_places=2)


class V4(BaseModel):  # a longer decimal precision for price
    __table_name__ = "readings"
    __unique__ = ("rid",)
    rid: str
    value: float
    note: str | None = None
    price: Decimal | None = Field(default=None, max_digits=12, decimal_places=2)


class Narrow(BaseModel):  # value back to int, and a new required field
    __table_name__ = "readings"
    __unique__ = ("rid",)
    rid: str
    value: int
    code: str


class Rekeyed(BaseModel):  # V4 with another unique key
    __table_name__ = "readings"
    __unique__ = ("note",)
    rid: str
    value: float
    note: str | None = None
    price: Decimal | None = Field(default=None, max_digits=12, decimal_places=2)


class Keyless(BaseModel):
    __table_name__ = "plain"
    rid: str
    value: int
"""


def cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``cli.py`` as a user runs it, answering as its own process would (it runs in this one:
    tests/inprocess.py)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return run_cli(list(map(str, args)), env=env, cwd=cwd)


def models(tmp_path: Path) -> Path:
    path = tmp_path / "models.py"
    path.write_text(MODELS)
    return path
