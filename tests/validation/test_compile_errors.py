"""What the compiler does not understand is a compile-time error naming field and construct."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import (
    AliasChoices,
    AliasPath,
    BaseModel,
    Field,
    PastDatetime,
    SecretBytes,
    SecretStr,
    model_validator,
)

from engine import validate
from engine.errors import SchemaError
from engine.validation.compiler import compile_schema
from tests.wording import assert_wraps


class Inner(BaseModel):
    x: int


class WithList(BaseModel):
    tags: list[str]


class WithUnion(BaseModel):
    value: int | str


class WithSecret(BaseModel):
    token: SecretStr | None = None


class WithSecretBytes(BaseModel):
    key: SecretBytes


class WithNested(BaseModel):
    inner: Inner


class WithLooseDecimal(BaseModel):
    price: Decimal


class WithPast(BaseModel):
    when: PastDatetime


class WithBadUnique(BaseModel):
    __unique__ = ("nope",)
    key: str = Field(min_length=1)


class WithTwiceUnique(BaseModel):
    __unique__ = ("key", "key")
    key: str


class WithEmptyTable(BaseModel):
    __table_name__ = " "
    key: str


class WithBadCompressionField(BaseModel):
    __compression__ = {"nope": "zstd"}
    key: str


class WithBadCompressionName(BaseModel):
    __compression__ = {"key": "zstd; DROP TABLE x"}
    key: str


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (
            WithList,
            "schema WithList, field 'tags': cannot compile a list: store it as text (str) and validate it after loading",
        ),
        (
            WithUnion,
            "schema WithUnion, field 'value': cannot compile a union: only X | None is supported; use one type, or str",
        ),
        (
            WithSecret,
            "schema WithSecret, field 'token': cannot compile SecretStr: the engine stores every value in clear (the typed table, raw_data); use str, and keep secrets out of ingested data",
        ),
        (
            WithSecretBytes,
            "schema WithSecretBytes, field 'key': cannot compile SecretBytes: the engine stores every value in clear (the typed table, raw_data); use str, and keep secrets out of ingested data",
        ),
        (
            WithNested,
            "schema WithNested, field 'inner': cannot compile a nested model: flatten its fields into this model",
        ),
        (
            WithLooseDecimal,
            "schema WithLooseDecimal, field 'price': cannot compile a Decimal without decimal_places (no fixed-scale DECIMAL column) (use Field(decimal_places=N) on the Decimal, or float)",
        ),
        (
            WithPast,
            "schema WithPast, field 'when': cannot compile PastDatetime / FutureDatetime (use a fixed bound (Field(lt=...)) or a validator with a twin)",
        ),
        (WithBadUnique, "schema WithBadUnique: __unique__ names 'nope', which is not a field"),
        (WithTwiceUnique, "schema WithTwiceUnique: __unique__ names 'key' twice"),
        (
            WithEmptyTable,
            "schema WithEmptyTable: __table_name__ must be a table's name, got ' ' (name the "
            "table, or leave __table_name__ out for one made from the model's name)",
        ),
        (
            WithBadCompressionField,
            "schema WithBadCompressionField: __compression__ names 'nope', which is not a field",
        ),
        (
            WithBadCompressionName,
            "schema WithBadCompressionName: __compression__ for 'key' is not a compression name: 'zstd; DROP TABLE x'",
        ),
    ],
)
def test_unsupported_constructs(model: type[BaseModel], expected: str) -> None:
    with pytest.raises(SchemaError) as raised:
        compile_schema(model, typed=False)
    assert str(raised.value) == expected


def test_keys_the_engine_cannot_read_are_refused() -> None:
    from pydantic import Field

    class Reserved(BaseModel):
        value: int = Field(validation_alias="__raw")

    class Pattern(BaseModel):
        value: int = Field(validation_alias="^v.*$")

    with pytest.raises(SchemaError) as raised:
        compile_schema(Reserved, typed=True)
    assert str(raised.value) == (
        "schema Reserved, field 'value': the input key '__raw' starts with '__', which is "
        "reserved for the engine's own columns (lineage, rule results) (use another key)"
    )
    with pytest.raises(SchemaError) as raised:
        compile_schema(Pattern, typed=False)
    assert str(raised.value) == (
        "schema Pattern, field 'value': the input key '^v.*$' is shaped like a column pattern "
        "('*' or ^...$), which Polars would read as all columns or as a regular expression "
        "(use another key)"
    )

    class Star(BaseModel):
        value: int = Field(validation_alias=AliasChoices("v", "*"))

    with pytest.raises(SchemaError) as raised:
        compile_schema(Star, typed=True)
    assert str(raised.value) == (
        "schema Star, field 'value': the input key '*' is shaped like a column pattern ('*' or "
        "^...$), which Polars would read as all columns or as a regular expression (use another "
        "key)"
    )


class BeforeModel(BaseModel):
    x: str

    @model_validator(mode="before")
    @classmethod
    def pre(cls, data: object) -> object:
        return data


class HugeBound(BaseModel):
    n: int = Field(le=10**40)


class TinyDecimalBound(BaseModel):
    d: Decimal = Field(decimal_places=2, multiple_of=Decimal("1e-50"))  # type: ignore[call-overload]


def test_refusals_say_what_to_use_instead() -> None:
    """A before model validator, and bounds no column of the field's type can hold: one line
    with the field, the construct and what to use instead (they crashed the run once)."""
    cases: dict[type[BaseModel], str] = {
        BeforeModel: (
            "schema BeforeModel: a model_validator(mode='before') is not supported: it sees "
            "each row before its fields are parsed, which no vectorized rule can (use a "
            "model_validator(mode='after'), or field validators, instead)"
        ),
        TinyDecimalBound: (
            "schema TinyDecimalBound, field 'd': cannot compile a Decimal bound "
            "Decimal('1E-50') of more than 38 digits (use a bound of at most 38 digits, or float)"
        ),
    }
    for model, message in cases.items():
        with pytest.raises(SchemaError) as raised:
            compile_schema(model, typed=False)
        assert str(raised.value) == message
    with pytest.raises(SchemaError) as raised:  # Polars words its own refusal: not pinned
        compile_schema(HugeBound, typed=False)
    assert_wraps(
        str(raised.value),
        "schema HugeBound, field 'n': cannot compile a 'int' with "
        "{'le': 10000000000000000000000000000000000000000} (",
        ") (use bounds a column of the field's type can hold (at most 38 digits, years "
        "1-9999), or validate this model with Pydantic directly)",
    )


class ByPath(BaseModel):
    v: int = Field(validation_alias=AliasPath("a", "b"))


class ByIndex(BaseModel):
    v: int = Field(validation_alias=AliasPath("a", 0))


class ByOneSegment(BaseModel):
    v: int = Field(validation_alias=AliasPath("a"))


class ByChoices(BaseModel):
    v: int = Field(validation_alias=AliasChoices("x", AliasPath("y")))


@pytest.mark.parametrize(
    ("model", "path"), [(ByPath, "['a', 'b']"), (ByIndex, "['a', 0]")], ids=["key", "index"]
)
def test_an_alias_path_into_a_value_is_refused(model: type[BaseModel], path: str) -> None:
    """The core schema spells AliasPath("a", "b") as ["a", "b"]: not two choices of keys."""
    with pytest.raises(SchemaError) as raised:
        compile_schema(model, typed=True)
    assert str(raised.value) == (
        f"schema {model.__name__}, field 'v': nested alias path {path} is not supported (use "
        "a plain key name, or AliasChoices of key names)"
    )


def test_one_segment_alias_paths_are_keys() -> None:
    assert compile_schema(ByOneSegment, typed=True).input_keys == ("a",)
    assert compile_schema(ByChoices, typed=True).input_keys == ("x", "y")
    valid = validate([{"y": 3}, {"x": 1, "y": 2}, {"a": 4}], ByChoices).valid
    assert valid["v"].to_list() == [3, 1]
