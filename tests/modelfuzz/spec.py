"""A generated model as data, and as the Python source a user would have written.

The source is what the CLI loads (``--schema model.py:Fuzzed``) and what a saved regression
case shows; Pydantic's verdicts come from importing that same source.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

Kind = Literal[
    "str",
    "int",
    "float",
    "bool",
    "decimal",
    "date",
    "datetime",
    "aware",
    "naive",
    "time",
    "uuid",
    "enum",
    "literal",
]
ORDERED: tuple[Kind, ...] = (
    "int",
    "float",
    "decimal",
    "date",
    "datetime",
    "aware",
    "naive",
    "time",
)
MODEL = "Fuzzed"
TYPES = {
    "str": "str",
    "int": "int",
    "float": "float",
    "bool": "bool",
    "decimal": "Decimal",
    "date": "datetime.date",
    "datetime": "datetime.datetime",
    "aware": "AwareDatetime",
    "naive": "NaiveDatetime",
    "time": "datetime.time",
}
ANNOTATED_TYPES = {
    "gt": "at.Gt",
    "ge": "at.Ge",
    "lt": "at.Lt",
    "le": "at.Le",
    "multiple_of": "at.MultipleOf",
    "min_length": "at.MinLen",
    "max_length": "at.MaxLen",
}


@dataclass(frozen=True)
class Default:
    """A default value, or a ``default_factory`` returning it."""

    value: Any
    factory: bool = False


@dataclass(frozen=True)
class Validator:
    """A field validator: ``rule`` fails the value (``ValueError``), ``transform`` changes it.

    ``mode``: ``after`` (``field_validator``), ``before`` (``field_validator(mode="before")``,
    never with a twin) or ``annotated`` (``AfterValidator`` inside ``Annotated``).
    """

    mode: Literal["after", "before", "annotated"]
    twin: bool
    rule: str
    arg: Any = None
    transform: bool = False


@dataclass(frozen=True)
class ModelCheck:
    """``model_validator(mode="after")``: fails when ``left > right`` (or ``left`` alone fails)."""

    left: str
    right: str | None
    twin: bool


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: Kind
    optional: bool = False
    default: Default | None = None  # None: required
    constraints: tuple[tuple[str, Any], ...] = ()
    string_ops: tuple[str, ...] = ()  # StringConstraints(strip_whitespace, to_upper, to_lower)
    placement: Literal["field", "annotated", "types"] = "field"
    strict: bool | None = None
    strict_in_annotated: bool = False
    alias: str | tuple[str, ...] | None = None
    uuid_version: int | None = None
    choices: tuple[Any, ...] = ()  # enum or literal values
    enum_base: str = ""
    validator: Validator | None = None

    @property
    def aliases(self) -> tuple[str, ...]:
        if self.alias is None:
            return ()
        return (self.alias,) if isinstance(self.alias, str) else self.alias

    def constraint(self, name: str) -> Any:
        return dict(self.constraints).get(name)


@dataclass(frozen=True)
class ModelSpec:
    fields: tuple[FieldSpec, ...]
    extra: Literal["ignore", "forbid", "allow"] | None = None
    strip: bool = False
    strict: bool = False
    by_name: Literal["populate_by_name", "validate_by_name"] | None = None
    check: ModelCheck | None = None
    unique: str | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)

    def field(self, name: str) -> FieldSpec:
        return next(f for f in self.fields if f.name == name)

    def input_keys(self) -> list[str]:
        """Every key the model reads: aliases first, names too when validated by name."""
        keys: list[str] = []
        for spec in self.fields:
            if spec.aliases:
                keys.extend(spec.aliases)
                if self.by_name:
                    keys.append(spec.name)
            else:
                keys.append(spec.name)
        return keys

    def without(self, name: str) -> ModelSpec:
        """The same model without one field (and whatever referred to it)."""
        check = self.check
        if check is not None and name in (check.left, check.right):
            check = None
        return ModelSpec(
            tuple(f for f in self.fields if f.name != name),
            self.extra,
            self.strip,
            self.strict,
            self.by_name,
            check,
            None if self.unique == name else self.unique,
        )


def literal(value: Any) -> str:
    """Python source for a bound, default or choice."""
    if isinstance(value, datetime.datetime | datetime.date | datetime.time | Decimal):
        return repr(value)
    if isinstance(value, float) and value != value:
        return "float('nan')"
    return repr(value)


def enum_class(spec: FieldSpec) -> str:
    return f"{spec.name.capitalize()}Choice"


def base_type(spec: FieldSpec) -> str:
    if spec.kind == "uuid":
        return f"UUID{spec.uuid_version}" if spec.uuid_version else "UUID"
    if spec.kind == "enum":
        return enum_class(spec)
    if spec.kind == "literal":
        return f"Literal[{', '.join(literal(c) for c in spec.choices)}]"
    return TYPES[spec.kind]


def _constraint_metadata(spec: FieldSpec) -> list[str]:
    if spec.placement == "annotated" and spec.constraints:
        args = ", ".join(f"{k}={literal(v)}" for k, v in spec.constraints)
        return [f"Field({args})"]
    if spec.placement != "types":
        return []
    out: list[str] = []
    field_args: list[str] = []
    for key, value in spec.constraints:
        if key in ANNOTATED_TYPES:
            out.append(f"{ANNOTATED_TYPES[key]}({literal(value)})")
        elif key == "pattern":
            out.append(f"StringConstraints(pattern={value!r})")
        elif key == "allow_inf_nan":
            out.append(f"AllowInfNan({value!r})")
        else:  # max_digits, decimal_places: only Field has them
            field_args.append(f"{key}={literal(value)}")
    if field_args:
        out.append(f"Field({', '.join(field_args)})")
    return out


def annotation(spec: FieldSpec) -> str:
    meta = _constraint_metadata(spec)
    if spec.string_ops:
        meta.append(f"StringConstraints({', '.join(f'{op}=True' for op in spec.string_ops)})")
    if spec.strict is not None and spec.strict_in_annotated:
        meta.append(f"Strict({spec.strict})")
    if spec.validator is not None and spec.validator.mode == "annotated":
        meta.append(f"AfterValidator(_after_{spec.name})")
    text = f"Annotated[{base_type(spec)}, {', '.join(meta)}]" if meta else base_type(spec)
    return f"{text} | None" if spec.optional else text


def field_arguments(spec: FieldSpec) -> list[str]:
    args: list[str] = []
    if spec.default is not None:
        value = spec.default.value
        shown = (
            f"{enum_class(spec)}({literal(value)})"
            if spec.kind == "enum" and value is not None
            else literal(value)
        )
        args.append(f"default_factory=lambda: {shown}" if spec.default.factory else shown)
    if spec.placement == "field":
        args.extend(f"{k}={literal(v)}" for k, v in spec.constraints)
    if spec.strict is not None and not spec.strict_in_annotated:
        args.append(f"strict={spec.strict}")
    if isinstance(spec.alias, str):
        args.append(f"validation_alias={spec.alias!r}")
    elif spec.alias:
        args.append(f"validation_alias=AliasChoices({', '.join(map(repr, spec.alias))})")
    return args
