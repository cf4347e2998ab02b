"""The compiler cannot drop a constraint: every key of every core-schema node it meets, and of
the config, is used or refused.

The keys come from pydantic-core's own TypedDicts (``pydantic_core.core_schema``), so a key a
future Pydantic adds is tried here too. For each supported node type and each of its keys, a
model's core schema is given that key (with a value that would change validation) and
compiled: the compile must either succeed having *read* the key, or fail naming it.
"""

from __future__ import annotations

import copy
import typing
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

import pytest
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import core_schema

from engine.errors import SchemaError
from engine.validation import ledger
from engine.validation.compiler import compile_schema
from engine.validation.nodes import LEAVES, NODES


class Color(StrEnum):
    RED = "red"


def _field_node(type_name: str) -> dict[str, Any]:
    """A core-schema node of ``type_name`` taken from a real model."""

    class Leaves(BaseModel):
        s: str
        i: int
        f: float
        b: bool
        d: Decimal = Field(decimal_places=2)
        dt: date
        ts: datetime
        t: time
        u: UUID
        lit: typing.Literal["a", "b"]
        e: Color

    by_type = {
        node["schema"]["type"]: node["schema"]
        for node in Leaves.__pydantic_core_schema__["schema"]["fields"].values()
    }
    return copy.deepcopy(by_type[type_name])


# A value for each key that, if ignored, would change what model_validate does.
SAMPLES: dict[str, Any] = {
    "ge": 1,
    "gt": 1,
    "le": 1,
    "lt": 1,
    "multiple_of": 3,
    "allow_inf_nan": False,
    "strict": True,
    "max_digits": 4,
    "decimal_places": 1,
    "min_length": 2,
    "max_length": 3,
    "pattern": "^a",
    "strip_whitespace": True,
    "to_lower": True,
    "to_upper": True,
    "ascii_only": True,
    "coerce_numbers_to_str": True,
    "regex_engine": "python-re",
    "version": 4,
    "tz_constraint": "aware",
    "now_op": "past",
    "now_utc_offset": 3600,
    "microseconds_precision": "error",
    "missing": lambda value: None,
    "sub_type": "str",
}
TEMPORAL_SAMPLES = {
    "date": date(2000, 1, 1),
    "datetime": datetime(2000, 1, 1),
    "time": time(1, 0),
}
TYPED_DICTS = {
    "str": core_schema.StringSchema,
    "int": core_schema.IntSchema,
    "float": core_schema.FloatSchema,
    "bool": core_schema.BoolSchema,
    "decimal": core_schema.DecimalSchema,
    "date": core_schema.DateSchema,
    "datetime": core_schema.DatetimeSchema,
    "time": core_schema.TimeSchema,
    "uuid": core_schema.UuidSchema,
    "literal": core_schema.LiteralSchema,
    "enum": core_schema.EnumSchema,
}


# The keys the engine refuses, and how it says so; every other key must compile and be read.
NOW = "use a fixed bound (Field(lt=...)) or a validator with a twin"
REFUSED = {
    ("str", "ascii_only"): "schema One, field 'x': ascii_only=True on a 'str' is not supported "
    "by the engine (it would be ignored) (remove it, or validate this model with Pydantic "
    "directly)",
    ("date", "now_op"): f"schema One, field 'x': cannot compile PastDate / FutureDate ({NOW})",
    (
        "date",
        "now_utc_offset",
    ): f"schema One, field 'x': cannot compile PastDate / FutureDate ({NOW})",
    ("datetime", "now_op"): "schema One, field 'x': cannot compile PastDatetime / FutureDatetime "
    f"({NOW})",
    ("datetime", "now_utc_offset"): "schema One, field 'x': cannot compile PastDatetime / "
    f"FutureDatetime ({NOW})",
}


def _keys(typed_dict: Any) -> list[str]:
    return sorted(typing.get_type_hints(typed_dict))


def _compile_with(node: dict[str, Any]) -> tuple[Any, SchemaError | None]:
    """Compile a one-field model whose field's schema is ``node``."""

    class One(BaseModel):
        x: str

    schema: dict[str, Any] = dict(One.__pydantic_core_schema__)
    fields: dict[str, Any] = dict(schema["schema"])
    fields["fields"] = {"x": {"type": "model-field", "schema": node, "metadata": {}}}
    schema["schema"] = fields
    One.__pydantic_core_schema__ = schema
    try:
        return compile_schema(One, typed=True), None
    except SchemaError as exc:
        return None, exc


def test_every_leaf_type_is_covered() -> None:
    assert set(TYPED_DICTS) == set(LEAVES)


CASES = [
    (type_name, key)
    for type_name, typed_dict in TYPED_DICTS.items()
    for key in _keys(typed_dict)
    if key not in ledger.INERT_KEYS and key != "type"
]


@pytest.mark.parametrize(("type_name", "key"), CASES)
def test_a_leaf_key_is_read_or_refused(type_name: str, key: str, monkeypatch: Any) -> None:
    node = _field_node(type_name)
    if key not in node:
        if key in ("ge", "gt", "le", "lt") and type_name in TEMPORAL_SAMPLES:
            node[key] = TEMPORAL_SAMPLES[type_name]
        elif key in SAMPLES:
            node[key] = SAMPLES[key]
        else:
            pytest.fail(f"no sample value for {type_name}.{key}: add one to SAMPLES")
    seen: list[ledger.Node] = []
    original = ledger.Node.__init__

    def spy(self: ledger.Node, raw: Any) -> None:
        original(self, raw)
        seen.append(self)

    monkeypatch.setattr(ledger.Node, "__init__", spy)
    _, error = _compile_with(node)
    leaf = [n for n in seen if n.raw is node][-1:]
    assert leaf, "the leaf node was never wrapped in the ledger"
    if (type_name, key) in REFUSED:
        assert str(error) == REFUSED[type_name, key]
    else:
        assert error is None, str(error)
        assert key in leaf[0].read, f"{type_name}.{key} compiled but was never read"


def test_an_unknown_node_key_is_refused() -> None:
    node = _field_node("int")
    node["brand_new_constraint"] = 5
    _, error = _compile_with(node)
    assert str(error) == (
        "schema One, field 'x': brand_new_constraint=5 on a 'int' is not supported by the "
        "engine (it would be ignored) (remove it, or validate this model with Pydantic directly)"
    )


def test_every_node_type_the_walker_handles_has_a_typed_dict() -> None:
    names = {
        "nullable": core_schema.NullableSchema,
        "function-after": core_schema.AfterValidatorFunctionSchema,
        "function-before": core_schema.BeforeValidatorFunctionSchema,
        "function-wrap": core_schema.WrapValidatorFunctionSchema,
        "function-plain": core_schema.PlainValidatorFunctionSchema,
        "lax-or-strict": core_schema.LaxOrStrictSchema,
        "json-or-python": core_schema.JsonOrPythonSchema,
        "chain": core_schema.ChainSchema,
    }
    assert set(NODES) == set(LEAVES) | set(names)
    for name, typed_dict in names.items():
        inert = ledger.INERT_BY_TYPE.get(name, frozenset())
        assert inert <= set(_keys(typed_dict)), name


@pytest.mark.parametrize("key", sorted(typing.get_type_hints(core_schema.CoreConfig)))
def test_every_config_key_is_accounted_for(key: str) -> None:
    known = ledger.INERT_CONFIG | ledger.MODEL_CONFIG | ledger.LEAF_CONFIG
    for keys in ledger.CONFIG_BY_TYPE.values():
        known |= keys
    assert key in known, f"config key {key!r} is neither used nor declared inert"


def test_an_unused_config_key_for_a_field_type_is_refused() -> None:
    class Loose(BaseModel):
        model_config = ConfigDict(regex_engine="python-re")
        x: int

    compiled = compile_schema(Loose, typed=False)  # no str field: nothing to apply it to
    assert [p.name for p in compiled.fields] == ["x"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            ConfigDict(hide_input_in_errors=True),
            "schema Hidden: hide_input_in_errors=True is not supported: every stored error "
            "keeps its input",
        ),
    ],
)
def test_model_config_that_cannot_be_honoured_is_refused(config: Any, expected: str) -> None:
    Hidden = type("Hidden", (BaseModel,), {"model_config": config, "__annotations__": {"x": int}})
    with pytest.raises(SchemaError) as raised:
        compile_schema(Hidden, typed=False)
    assert str(raised.value) == expected
