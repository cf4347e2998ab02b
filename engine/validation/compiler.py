"""Compile a Pydantic model into named Polars rules, once.

The compiler reads ``Model.__pydantic_core_schema__``, the very structure pydantic-core
executes, so defaults, aliases, constraints and validators are seen exactly as Pydantic sees
them. Each field becomes a :class:`FieldProgram`: an expression for its typed value and its
ordered rules. Anything it cannot translate is either a compile-time :class:`SchemaError`
naming the field and the construct, or (for Python validators without a vectorized twin)
marked so that the affected rows go through Pydantic itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl
from pydantic import BaseModel

from engine.batch import Kind, kind_column
from engine.errors import SchemaError
from engine.sources.json_values import token_column
from engine.store.ddl import sql_type
from engine.validation.choices import parse_enum, parse_literal
from engine.validation.common import json_text, json_value, message
from engine.validation.decimals import parse_decimal
from engine.validation.numbers import parse_float, parse_int
from engine.validation.rules import FieldProgram, Helper, Parsed, Rule, Value, value_column
from engine.validation.storage_options import compression, table_name, unique_key
from engine.validation.strict import strict_parse
from engine.validation.strings import parse_bool, parse_str
from engine.validation.temporal import parse_date, parse_datetime, parse_time
from engine.validation.uuids import parse_uuid
from engine.validation.vectorized import (
    Check,
    ModelOutcome,
    Outcome,
    VectorContext,
    pydantic_message,
    twin_of,
)

NOW = "__now"
LEAVES: dict[str, Callable[[Value, dict[str, Any], dict[str, Any]], Parsed]] = {
    "str": parse_str,
    "int": parse_int,
    "float": parse_float,
    "bool": parse_bool,
    "decimal": parse_decimal,
    "date": parse_date,
    "datetime": parse_datetime,
    "time": parse_time,
    "uuid": parse_uuid,
    "literal": parse_literal,
    "enum": parse_enum,
}


def default_column(name: str) -> str:
    return f"__default:{name}"


@dataclass
class ModelRule:
    """A model-level check (loc ``()``), evaluated once every field is valid."""

    error_type: str
    fails: pl.Expr
    message: pl.Expr


@dataclass
class CompiledSchema:
    model: type[BaseModel]
    name: str
    table: str
    fields: list[FieldProgram]
    typed: bool
    extra: str
    context: Mapping[str, Any]
    defaults: dict[str, Callable[[], Any]]
    model_rules: list[ModelRule] = field(default_factory=list)
    model_values: dict[str, pl.Expr] = field(default_factory=dict)
    model_python: str | None = None  # "valid" (after-validator) or "all" (before/wrap)
    notes: list[str] = field(default_factory=list)
    unique: tuple[str, ...] = ()  # field names forming a unique key (``__unique__``)
    compression: dict[str, str] = field(default_factory=dict)  # ``__compression__``

    @property
    def unique_loc(self) -> tuple[str, ...]:
        """How the unique key's fields are named in errors (their first input key)."""
        by_name = {p.name: p.keys[0] for p in self.fields}
        return tuple(by_name[name] for name in self.unique)

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
        self.config: dict[str, Any] = {}
        self.defaults: dict[str, Callable[[], Any]] = {}
        self.now = VectorContext(context=context, now=pl.col(NOW), now_value=datetime.now())
        self.all_keys: list[str] = []

    def error(self, problem: str, field: str | None = None) -> SchemaError:
        return SchemaError(self.name, problem, field=field)

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while node["type"] in ("definitions", "definition-ref"):
            if node["type"] == "definitions":
                for definition in node["definitions"]:
                    self.definitions[definition["ref"]] = definition
                node = node["schema"]
            else:
                node = self.definitions[node["schema_ref"]]
        return node

    def compile(self) -> CompiledSchema:
        node = self.resolve(self.model.__pydantic_core_schema__)  # type: ignore[arg-type]
        model_wrappers: list[dict[str, Any]] = []
        while node["type"] != "model":
            if node["type"].startswith("function-"):
                model_wrappers.append(node)
                node = self.resolve(node["schema"]) if "schema" in node else node
                if node in model_wrappers:
                    raise self.error("a plain model validator replaces validation entirely")
            else:
                raise self.error(f"unsupported model schema {node['type']!r}")
        self.config = dict(node.get("config") or {})
        fields_node = self.resolve(node["schema"])
        if fields_node["type"] != "model-fields":
            raise self.error(f"unsupported model body {fields_node['type']!r}")
        programs = [self.field(name, spec) for name, spec in fields_node["fields"].items()]
        compiled = CompiledSchema(
            model=self.model,
            name=self.name,
            table=table_name(self.model),
            fields=programs,
            typed=self.typed,
            extra=fields_node.get("extra_behavior")
            or self.config.get("extra_fields_behavior")
            or "ignore",
            context=self.context,
            defaults=self.defaults,
        )
        for wrapper in reversed(model_wrappers):
            self.model_validator(compiled, wrapper)
        compiled.unique = unique_key(self.model, self.name, {p.name for p in programs})
        compiled.compression = compression(
            self.model, self.name, {p.name: p.sql_type for p in programs}
        )
        return compiled

    def model_validator(self, compiled: CompiledSchema, node: dict[str, Any]) -> None:
        function = node["function"]["function"]
        twin = twin_of(function)
        label = getattr(function, "__name__", repr(function))
        if node["type"] != "function-after":
            compiled.model_python = "all"
            compiled.notes.append(
                f"model validator {label} ({node['type']}): every row through Pydantic"
            )
            return
        if twin is None:
            if compiled.model_python is None:
                compiled.model_python = "valid"
            compiled.notes.append(f"model validator {label}: rows valid so far go through Pydantic")
            return
        values = {p.name: pl.col(value_column(p.name)) for p in compiled.fields}
        values.update(compiled.model_values)
        outcome = twin(values, self.now)
        if not isinstance(outcome, ModelOutcome):
            raise self.error(f"vectorized twin of {label} must return a ModelOutcome")
        compiled.model_values.update(outcome.values)
        for check in outcome.checks:
            compiled.model_rules.append(
                ModelRule(check.error_type, check.fails, pydantic_message(check))
            )
        compiled.notes.append(f"model validator {label}: vectorized")

    def keys_for(self, name: str, spec: dict[str, Any]) -> tuple[str, ...]:
        alias = spec.get("validation_alias")
        if alias is None:
            return (name,)
        choices: list[Any] = [alias] if isinstance(alias, str) else list(alias)
        keys: list[str] = []
        for choice in choices:
            path = [choice] if isinstance(choice, str) else list(choice)
            if len(path) != 1 or not isinstance(path[0], str):
                raise self.error(f"nested alias path {choice!r} is not supported", name)
            keys.append(path[0])
        by_name = self.config.get("validate_by_name", self.config.get("populate_by_name", False))
        if by_name and name not in keys:
            keys.append(name)
        return tuple(keys)

    def value(self, name: str, keys: tuple[str, ...]) -> Value:
        def one(key: str) -> Value:
            text = pl.col(key)
            if not self.typed:
                return Value(text, None, json_text(text), name)
            return Value(text, pl.col(kind_column(key)), pl.col(token_column(key)), name)

        values = [one(k) for k in keys]
        if len(values) == 1:
            return values[0]
        first = values[-1]
        for candidate in reversed(values[:-1]):
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

    def field(self, name: str, spec: dict[str, Any]) -> FieldProgram:
        keys = self.keys_for(name, spec)
        self.all_keys.extend(k for k in keys if k not in self.all_keys)
        value = self.value(name, keys)
        node = self.resolve(spec["schema"])
        required = node["type"] != "default"
        default: Any = None
        python_absent = False
        if not required:
            if node.get("validate_default"):
                python_absent = True
            if "default_factory" in node:
                if node.get("default_factory_takes_data"):
                    python_absent = True
                self.defaults[name] = node["default_factory"]
            else:
                default = node["default"]
            node = self.resolve(node["schema"])
        present = ~value.absent
        try:
            walked = self.walk(name, node, value, present)
        except NotImplementedError as exc:
            raise self.error(f"cannot compile {exc}", name) from exc
        rules = list(walked.rules)
        if required:
            rules.insert(0, Rule("missing", value.absent, message("missing"), describe="required"))
            final = walked.value
        else:
            fallback = (
                pl.col(default_column(name)) if name in self.defaults else pl.lit(_plain(default))
            )
            final = pl.when(value.absent).then(fallback.cast(walked.dtype)).otherwise(walked.value)
        python = walked.python
        if python_absent:
            python = value.absent if python is None else (python | value.absent)
        program = FieldProgram(
            name=name,
            keys=keys,
            value=final.cast(walked.dtype, strict=False),
            rules=rules,
            dtype=walked.dtype,
            sql_type=walked.sql_type or sql_type(walked.dtype, column=name),
            required=required,
            default=default,
            python_rows=python,
        )
        program.notes.extend(walked.steps)
        program.helpers.extend(walked.helpers)
        return program

    def walk(self, name: str, node: dict[str, Any], value: Value, guard: pl.Expr) -> Parsed:
        kind = node["type"]
        if kind in ("definitions", "definition-ref"):
            return self.walk(name, self.resolve(node), value, guard)
        if kind == "nullable":
            if value.kind is None:
                return self.walk(name, self.resolve(node["schema"]), value, guard)
            inner = self.walk(name, self.resolve(node["schema"]), value, guard & ~value.is_null)
            return Parsed(
                pl.when(value.is_null).then(None).otherwise(inner.value),
                inner.rules,
                inner.dtype,
                ("null allowed", *inner.steps),
                inner.python,
                inner.helpers,
                inner.sql_type,
            )
        if kind == "function-after":
            inner = self.walk(name, self.resolve(node["schema"]), value, guard)
            return self.after_validator(name, node, inner, guard)
        if kind in ("function-before", "function-wrap", "function-plain"):
            if "schema" not in node:
                raise NotImplementedError(f"a {kind} validator without an inner type")
            inner = self.walk(name, self.resolve(node["schema"]), value, guard)
            label = getattr(node["function"]["function"], "__name__", "validator")
            steps = (*inner.steps, f"validator {label} ({kind}): no vectorized twin, Pydantic")
            return Parsed(
                inner.value, inner.rules, inner.dtype, steps, guard, inner.helpers, inner.sql_type
            )
        if kind in ("lax-or-strict", "json-or-python"):
            branch: dict[str, Any] = node.get("lax_schema") or node["python_schema"]
            return self.walk(name, self.resolve(branch), value, guard)
        parser = LEAVES.get(kind)
        if parser is None:
            raise NotImplementedError(f"type {kind!r}")
        if node.get("strict", self.config.get("strict", False)):
            parsed = strict_parse(kind, parser, value, node, self.config)
        else:
            parsed = parser(value, node, self.config)
        rules = tuple(_guarded(rule, guard, value) for rule in parsed.rules)
        python = None if parsed.python is None else (parsed.python & guard)
        steps = (f"{kind}: " + "; ".join(parsed.steps),)
        return Parsed(
            parsed.value, rules, parsed.dtype, steps, python, parsed.helpers, parsed.sql_type
        )

    def after_validator(
        self, name: str, node: dict[str, Any], inner: Parsed, guard: pl.Expr
    ) -> Parsed:
        function = node["function"]["function"]
        label = getattr(function, "__name__", "validator")
        twin = twin_of(function)
        inner_ok = pl.lit(True)
        for rule in inner.rules:
            inner_ok = inner_ok & ~rule.fails.fill_null(False)
        if twin is None:
            rows = guard & inner_ok
            python = rows if inner.python is None else (inner.python | rows)
            steps = (*inner.steps, f"validator {label}: no vectorized twin, Pydantic")
            return Parsed(
                inner.value, inner.rules, inner.dtype, steps, python, inner.helpers, inner.sql_type
            )
        context = VectorContext(self.context, self.now.now, self.now.now_value, field_name=name)
        # The twin's input is the value before it, computed once as a column: the twin reads
        # it, and errors show it as their input.
        before = Helper(f"__in:{name}:{label}", inner.value)
        outcome = twin(pl.col(before.name), context)
        if not isinstance(outcome, Outcome):
            raise NotImplementedError(f"vectorized twin of {label} must return an Outcome")
        rules = list(inner.rules)
        for check in outcome.checks:
            rules.append(_check_rule(check, guard, json_value(pl.col(before.name), inner.dtype)))
        new_value = pl.col(before.name) if outcome.value is None else outcome.value
        dtype = self.infer_dtype(new_value, (*inner.helpers, before))
        steps = (*inner.steps, f"validator {label}: vectorized twin")
        sql = inner.sql_type if dtype == inner.dtype else None
        return Parsed(
            new_value, tuple(rules), dtype, steps, inner.python, (*inner.helpers, before), sql
        )

    def infer_dtype(self, expr: pl.Expr, helpers: tuple[Helper, ...]) -> pl.DataType:
        """The dtype an expression yields on this schema's raw input (and helper) columns."""
        schema: dict[str, pl.DataType] = {NOW: pl.Datetime("us", "UTC")}
        for key in self.all_keys:
            schema[key] = pl.String()
            schema[kind_column(key)] = pl.UInt8()
            schema[token_column(key)] = pl.String()
        for name, factory in self.defaults.items():
            schema[default_column(name)] = pl.select(pl.lit(_plain(factory()))).to_series().dtype
        frame = pl.DataFrame(schema=schema)
        for helper in helpers:
            if isinstance(helper.expr, pl.Expr):
                frame = frame.with_columns(helper.expr.alias(helper.name))
            else:
                frame = frame.with_columns(helper.expr(frame).alias(helper.name))
        return frame.select(expr.alias("x")).schema["x"]


def _check_rule(check: Check, guard: pl.Expr, given: pl.Expr) -> Rule:
    return Rule(
        check.error_type,
        check.fails.fill_null(False) & guard,
        pydantic_message(check),
        input=given,
        describe="custom check",
    )


def _guarded(rule: Rule, guard: pl.Expr, value: Value) -> Rule:
    return Rule(
        rule.error_type,
        rule.fails.fill_null(False) & guard,
        rule.message,
        rule.input,
        rule.describe,
    )


def _plain(default: Any) -> Any:
    from enum import Enum

    return default.value if isinstance(default, Enum) else default


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


__all__ = ["NOW", "CompiledSchema", "Kind", "compile_schema", "default_column", "fingerprint"]
