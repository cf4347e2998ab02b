"""Compile a Pydantic model into named Polars rules, once.

The compiler reads ``Model.__pydantic_core_schema__``, the very structure pydantic-core
executes, so defaults, aliases, constraints and validators are seen exactly as Pydantic sees
them. Each field becomes a :class:`FieldProgram`: an expression for its typed value and its
ordered rules (``engine.validation.nodes`` walks the field's nodes). Every key of every node
and of the config is accounted for (``engine.validation.ledger``): translated into a rule,
routed to Pydantic for the rows it affects, or refused with a :class:`SchemaError` naming the
field and the key. Nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel

from engine.batch import Kind
from engine.columns import (
    NOW,
    default_column,
    default_unstorable_column,
    kind_column,
    token_column,
    value_column,
)
from engine.errors import SchemaError
from engine.store.ddl import sql_type
from engine.validation.common import json_text, message, plain_value
from engine.validation.ledger import Config, Node
from engine.validation.nodes import refuse_unread, walk
from engine.validation.rules import FieldProgram, Helper, Rule, Value
from engine.validation.storable import Unstorable, storable_default
from engine.validation.storage_options import checked_table_name, compression, unique_key
from engine.validation.vectorized import ModelOutcome, VectorContext, pydantic_message, twin_of

# Which rows a model validator without a vectorized twin sends to Pydantic: every row (a
# before or wrap validator sees the raw input), or the rows valid so far (an after one).
ModelPython = Literal["all", "valid"] | None
Extra = Literal["ignore", "forbid", "allow"]


@dataclass(frozen=True)
class ModelRule:
    """A model-level check (loc ``()``), evaluated once every field is valid."""

    error_type: str
    fails: pl.Expr
    message: pl.Expr


@dataclass(frozen=True)
class ModelLevel:
    """What the model's own validators add on top of the fields."""

    rules: tuple[ModelRule, ...] = ()
    values: Mapping[str, pl.Expr] = field(default_factory=dict)
    python: ModelPython = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompiledSchema:
    model: type[BaseModel]
    name: str
    table: str
    fields: tuple[FieldProgram, ...]
    typed: bool
    extra: Extra
    context: Mapping[str, Any]
    defaults: Mapping[str, Callable[[], Any]]
    model_level: ModelLevel = ModelLevel()
    unique: tuple[str, ...] = ()  # field names forming a unique key (``__unique__``)
    compression: Mapping[str, str] = field(default_factory=dict)  # ``__compression__``

    @property
    def unique_loc(self) -> tuple[str, ...]:
        """How the unique key's fields are named in errors (their first input key)."""
        by_name = {p.name: p.loc_name for p in self.fields}
        return tuple(by_name[name] for name in self.unique)

    @cached_property
    def fingerprint(self) -> str:
        """What runs of this schema record as ``schema_fingerprint`` (see ``fingerprint``)."""
        return fingerprint(self.model, self.context)

    @property
    def input_keys(self) -> tuple[str, ...]:
        keys: list[str] = []
        for program in self.fields:
            keys.extend(k for k in program.keys if k not in keys)
        return tuple(keys)

    @property
    def model_type_message(self) -> str:
        return f"Input should be a valid dictionary or instance of {self.model.__name__}"


def fingerprint(model: type[BaseModel], context: Mapping[str, Any]) -> str:
    """Identifies what a run validated against: the model's JSON schema and the context."""
    payload = json.dumps(
        {"schema": model.model_json_schema(), "context": context, "model": model.__qualname__},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class _Compiler:
    def __init__(
        self, model: type[BaseModel], *, typed: bool, context: Mapping[str, Any], name: str
    ) -> None:
        self.model = model
        self.typed = typed
        self.context = context
        self.name = name
        self.definitions: dict[str, Any] = {}
        self.config = Config({})
        self.defaults: dict[str, Callable[[], Any]] = {}
        self.vector_context = VectorContext(
            context=context, now=pl.col(NOW), now_value=datetime.now()
        )
        self.all_keys: list[str] = []
        self.column_shape: dict[str, dict[str, Any]] = {}

    def error(self, problem: str, field: str | None = None, hint: str | None = None) -> SchemaError:
        return SchemaError(self.name, problem, field=field, hint=hint)

    def resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        while node["type"] in ("definitions", "definition-ref"):
            if node["type"] == "definitions":
                for definition in node["definitions"]:
                    self.definitions[definition["ref"]] = definition
                node = node["schema"]
            else:
                node = self.definitions[node["schema_ref"]]
        return node

    # -- the model ----------------------------------------------------------------------

    def compile(self) -> CompiledSchema:
        wrappers, model = self.model_node()
        self.config = Config(model.get("config") or {})
        unknown = self.config.unknown()
        if unknown:
            raise self.error(f"config {', '.join(unknown)} is not supported by the engine")
        if self.config.get("hide_input_in_errors"):
            raise self.error(
                "hide_input_in_errors=True is not supported: every stored error keeps its input"
            )
        if model.get("root_model"):
            raise self.error("a RootModel is not supported: use a model with named fields")
        if model.get("custom_init"):
            raise self.error(
                "a custom __init__ is not supported: model_validate runs it on every row",
                hint="use a model_validator(mode='after') or field validators instead",
            )
        fields_node = Node(self.resolve(model["schema"]))
        if fields_node.type in ("function-before", "function-wrap", "function-plain"):
            mode = fields_node.type.removeprefix("function-")
            raise self.error(
                f"a model_validator(mode='{mode}') is not supported: it sees each row before "
                "its fields are parsed, which no vectorized rule can",
                hint="use a model_validator(mode='after'), or field validators, instead",
            )
        if fields_node.type != "model-fields":
            raise self.error(f"unsupported model body {fields_node.type!r}")
        for key in ("extras_schema", "extras_keys_schema"):
            if fields_node.get(key) is not None:
                raise self.error("typed extra fields (__pydantic_extra__) are not supported")
        if fields_node.get("strict", model.get("strict")):
            self.config = Config({**self.config.raw, "strict": True})
        extra: Extra = (
            fields_node.get("extra_behavior")
            or model.get("extra_behavior")
            or self.config.get("extra_fields_behavior")
            or "ignore"
        )
        programs = tuple(self.field(name, spec) for name, spec in fields_node["fields"].items())
        level = self.model_level(programs, wrappers, post_init=model.get("post_init"))
        refuse_unread(self.name, None, fields_node)
        refuse_unread(self.name, None, model)
        return CompiledSchema(
            model=self.model,
            name=self.name,
            table=checked_table_name(self.model, self.name),
            fields=programs,
            typed=self.typed,
            extra=extra,
            context=self.context,
            defaults=self.defaults,
            model_level=level,
            unique=unique_key(self.model, self.name, {p.name for p in programs}),
            compression=compression(self.model, self.name, {p.name: p.sql_type for p in programs}),
        )

    def model_node(self) -> tuple[list[Node], Node]:
        """The model validators wrapped around the model (outermost first), and the model."""
        wrappers: list[Node] = []
        node = Node(self.resolve(self.model.__pydantic_core_schema__))
        while node.type != "model":
            if not node.type.startswith("function-") or "schema" not in node:
                raise self.error(
                    f"unsupported model schema {node.type!r}",
                    hint="a plain model validator replaces validation entirely; use mode='after'",
                )
            wrappers.append(node)
            node = Node(self.resolve(node["schema"]))
        return wrappers, node

    def model_level(
        self, programs: tuple[FieldProgram, ...], wrappers: list[Node], post_init: Any
    ) -> ModelLevel:
        rules: list[ModelRule] = []
        values: dict[str, pl.Expr] = {}
        python: ModelPython = None
        notes: list[str] = []
        if post_init:
            python = "valid"
            notes.append(f"{post_init}: rows valid so far go through Pydantic")
        for node in reversed(wrappers):  # innermost first: the order Pydantic runs them in
            function = node["function"]["function"]
            twin = twin_of(function)
            label = getattr(function, "__name__", repr(function))
            refuse_unread(self.name, None, node)
            if node.type != "function-after":
                python = "all"
                notes.append(f"model validator {label} ({node.type}): every row through Pydantic")
                continue
            if twin is None:
                python = python or "valid"
                notes.append(f"model validator {label}: rows valid so far go through Pydantic")
                continue
            current = {p.name: pl.col(value_column(p.name)) for p in programs} | values
            outcome = twin(current, self.vector_context)
            if not isinstance(outcome, ModelOutcome):
                raise self.error(f"vectorized twin of {label} must return a ModelOutcome")
            values.update(outcome.values)
            rules.extend(
                ModelRule(check.error_type, check.fails, pydantic_message(check))
                for check in outcome.checks
            )
            notes.append(f"model validator {label}: vectorized")
        return ModelLevel(tuple(rules), values, python, tuple(notes))

    # -- one field ----------------------------------------------------------------------

    def keys_for(self, name: str, spec: Node) -> tuple[str, ...]:
        keys = self._keys(name, spec)
        for key in (name, *keys):
            if key.startswith("__"):
                raise self.error(
                    f"the input key {key!r} starts with '__', which is reserved for the "
                    "engine's own columns (lineage, rule results)",
                    name,
                    hint="use another key"
                    if key != name
                    else "rename the field, or give it a validation_alias",
                )
            if key == "*" or (key.startswith("^") and key.endswith("$")):
                raise self.error(
                    f"the input key {key!r} is shaped like a column pattern ('*' or ^...$), "
                    "which Polars would read as all columns or as a regular expression",
                    name,
                    hint="use another key"
                    if key != name
                    else "rename the field, or give it a validation_alias",
                )
        return keys

    def _keys(self, name: str, spec: Node) -> tuple[str, ...]:
        alias = spec.get("validation_alias")
        by_alias = self.config.get("validate_by_alias", True)
        by_name = self.config.get("validate_by_name", self.config.get("populate_by_name", False))
        if alias is None or not by_alias:
            return (name,)
        # The core schema spells a key as a str, an AliasPath as a list of its segments (str
        # and int), and AliasChoices as a list of such lists.
        choices: list[Any]
        if isinstance(alias, str) or not all(isinstance(c, list) for c in alias):
            choices = [alias]
        else:
            choices = list(alias)
        keys: list[str] = []
        for choice in choices:
            path = [choice] if isinstance(choice, str) else list(choice)
            if len(path) != 1 or not isinstance(path[0], str):
                raise self.error(
                    f"nested alias path {choice!r} is not supported",
                    name,
                    hint="use a plain key name, or AliasChoices of key names",
                )
            if path[0] not in keys:  # a repeated choice is never reached again
                keys.append(path[0])
        if by_name and name not in keys:
            keys.append(name)
        return tuple(keys)

    def value(self, name: str, keys: tuple[str, ...]) -> Value:
        """The field's input: the first present key's value (Pydantic tries them in order)."""

        def one(key: str) -> Value:
            text = pl.col(key)
            if not self.typed:
                return Value(text, None, json_text(text), name)
            return Value(text, pl.col(kind_column(key)), pl.col(token_column(key)), name)

        first = one(keys[-1])
        for key in reversed(keys[:-1]):
            candidate = one(key)
            present = ~candidate.absent
            first = Value(
                pl.when(present).then(candidate.text).otherwise(first.text),
                None
                if candidate.kind is None or first.kind is None
                else pl.when(present).then(candidate.kind).otherwise(first.kind),
                pl.when(present).then(candidate.token).otherwise(first.token),
                name,
            )
        return first

    def field(self, name: str, raw_spec: Mapping[str, Any]) -> FieldProgram:
        spec = Node(raw_spec)
        keys = self.keys_for(name, spec)
        self.all_keys.extend(k for k in keys if k not in self.all_keys)
        value = self.value(name, keys)
        outer = Node(self.resolve(spec["schema"]))
        required = outer.type != "default"
        default: Any = None
        python_absent = False
        node: Mapping[str, Any] = outer.raw
        if not required:
            if outer.get("on_error", "raise") != "raise":
                raise self.error(f"on_error={outer['on_error']!r} is not supported", name)
            if outer.get("validate_default", self.config.get("validate_default", False)):
                python_absent = True
            if "default_factory" in outer:
                if outer.get("default_factory_takes_data"):  # called with the row's data:
                    python_absent = True  # by Pydantic, on the rows without the field
                else:
                    self.defaults[name] = outer["default_factory"]
            else:
                default = outer["default"]
            node = outer["schema"]
            refuse_unread(self.name, name, outer)
        walked = walk(self, name, node, value, ~value.absent)
        refuse_unread(self.name, name, spec)
        rules = walked.rules
        if required:
            missing = Rule("missing", value.absent, message("missing"), describe="required")
            rules = (missing, *rules)
            final = walked.value
        else:
            if python_absent:  # Pydantic validates the default: the rows without the field
                fallback = pl.lit(None, dtype=walked.dtype)  # are its to decide
                absent_to_python = None
            elif name in self.defaults:
                fallback = pl.col(default_column(name))
                # A factory's value the column cannot hold (in this batch): Pydantic decides.
                absent_to_python = value.absent & pl.col(default_unstorable_column(name))
            else:
                # Pydantic does not validate defaults: one the column cannot hold (wrong type,
                # too large) leaves the rows without the field to Pydantic and a storage error.
                try:
                    fallback = pl.lit(storable_default(default, walked.dtype), dtype=walked.dtype)
                    absent_to_python = None
                except Unstorable:
                    fallback = pl.lit(None, dtype=walked.dtype)
                    absent_to_python = value.absent
            final = pl.when(value.absent).then(fallback.cast(walked.dtype)).otherwise(walked.value)
        python = walked.python
        if python_absent:
            python = value.absent if python is None else (python | value.absent)
        elif not required and absent_to_python is not None:
            python = absent_to_python if python is None else (python | absent_to_python)
        loc_by_alias = self.config.get("loc_by_alias", True)
        return FieldProgram(
            name=name,
            keys=keys,
            value=final.cast(walked.dtype, strict=False),
            rules=rules,
            dtype=walked.dtype,
            sql_type=walked.sql_type or sql_type(walked.dtype, column=name),
            required=required,
            default=default,
            python_rows=python,
            notes=walked.steps,
            helpers=walked.helpers,
            loc_by_alias=bool(loc_by_alias),
        )

    def infer_dtype(self, expr: pl.Expr, helpers: tuple[Helper, ...]) -> pl.DataType:
        """The dtype an expression yields on this schema's raw input (and helper) columns."""
        schema: dict[str, pl.DataType] = {NOW: pl.Datetime("us", "UTC")}
        for key in self.all_keys:
            schema[key] = pl.String()
            schema[kind_column(key)] = pl.UInt8()
            schema[token_column(key)] = pl.String()
        for name, factory in self.defaults.items():
            with contextlib.suppress(Exception):  # a twin never reads a default column
                schema[default_column(name)] = (
                    pl.select(pl.lit(plain_value(factory()))).to_series().dtype
                )
        frame = pl.DataFrame(schema=schema)
        for helper in helpers:
            if isinstance(helper.expr, pl.Expr):
                frame = frame.with_columns(helper.expr.alias(helper.name))
            else:
                frame = frame.with_columns(helper.expr(frame).alias(helper.name))
        return frame.select(expr.alias("x")).schema["x"]


def compile_schema(
    model: type[BaseModel],
    *,
    typed: bool,
    context: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> CompiledSchema:
    """Compile ``model`` for text (CSV, ``typed=False``) or JSON-typed input."""
    compiler = _Compiler(
        model, typed=typed, context=dict(context or {}), name=name or model.__name__
    )
    return compiler.compile()


__all__ = ["CompiledSchema", "Kind", "ModelLevel", "ModelRule", "compile_schema", "fingerprint"]
