"""One field's core schema, node by node, into a :class:`Parsed`: a handler per node type.

``NODES`` maps each core-schema node type the engine understands to its handler; any other
type is a :class:`SchemaError` that says what to use instead. Every node is read through a
:class:`~engine.validation.ledger.Node`, so a key no handler reads fails the compile instead
of being dropped.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import polars as pl

from engine.columns import validator_input_column
from engine.errors import SchemaError
from engine.validation.choices import parse_enum, parse_literal
from engine.validation.decimals import parse_decimal
from engine.validation.leaf_oracle import with_oracle
from engine.validation.ledger import Config, Node, describe
from engine.validation.numbers import parse_float, parse_int
from engine.validation.rules import Helper, Parsed, Rule, Unsupported, Value
from engine.validation.strict import strict_parse
from engine.validation.strings import parse_bool, parse_str
from engine.validation.temporal import parse_date, parse_datetime, parse_time
from engine.validation.uuids import parse_uuid
from engine.validation.vectorized import Check, Outcome, VectorContext, pydantic_message, twin_of

Parser = Callable[[Value, Mapping[str, Any], Mapping[str, Any]], Parsed]

LEAVES: dict[str, Parser] = {
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

# What to use instead of a construct the engine cannot compile.
INSTEAD: dict[str, str] = {
    "model": "a nested model: flatten its fields into this model",
    "model-fields": "a nested model: flatten its fields into this model",
    "typed-dict": "a TypedDict: flatten its keys into fields of this model",
    "dataclass": "a dataclass: flatten its fields into this model",
    "list": "a list: store it as text (str) and validate it after loading",
    "tuple": "a tuple: store it as text (str) and validate it after loading",
    "set": "a set: store it as text (str) and validate it after loading",
    "frozenset": "a frozenset: store it as text (str) and validate it after loading",
    "dict": "a dict: store it as text (str) and validate it after loading",
    "union": "a union: only X | None is supported; use one type, or str",
    "tagged-union": "a tagged union: only X | None is supported",
    "bytes": "bytes: use str",
    "timedelta": "a timedelta: use int or float seconds",
    "url": "a URL type: use str with a pattern",
    "multi-host-url": "a URL type: use str with a pattern",
    "any": "Any: use str, or a concrete type",
    "none": "None alone: use X | None",
    "is-instance": "an arbitrary class: use a supported type",
    "json": "Json[...]: use str",
    "callable": "a callable: use a supported type",
    "complex": "complex: use two float fields",
}


class Walker(Protocol):
    """What a handler needs from the compiler."""

    name: str
    config: Config
    context: Mapping[str, Any]
    vector_context: VectorContext
    column_shape: dict[str, dict[str, Any]]  # per field, from constraints after validators

    def resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]: ...

    def infer_dtype(self, expr: pl.Expr, helpers: tuple[Helper, ...]) -> pl.DataType: ...


Handler = Callable[[Walker, str, Node, Value, pl.Expr], Parsed]


def walk(
    walker: Walker, field: str, raw: Mapping[str, Any], value: Value, guard: pl.Expr
) -> Parsed:
    """The field's value and rules from ``raw``; ``guard`` marks the rows that reach it."""
    node = Node(walker.resolve(raw))
    handler = NODES.get(node.type)
    if handler is None:
        raise SchemaError(walker.name, f"cannot compile {_instead(node)}", field=field)
    parsed = handler(walker, field, node, value, guard)
    refuse_unread(walker.name, field, node)
    return parsed


def _instead(node: Node) -> str:
    """What the construct is and what to use instead; a secret type is named as such (its
    core schema is a union with an instance check of the secret class)."""
    secrets = [
        choice["cls"].__name__
        for choice in node.raw.get("choices", ())
        if isinstance(choice, Mapping)
        and choice.get("type") == "is-instance"
        and hasattr(choice.get("cls"), "get_secret_value")
    ]
    if secrets:
        return (
            f"{secrets[0]}: the engine stores every value in clear (the typed table, "
            "raw_data); use str, and keep secrets out of ingested data"
        )
    return INSTEAD.get(node.type, f"core schema type {node.type!r}")


def refuse_unread(schema: str, field: str | None, node: Node) -> None:
    unread = node.unread()
    if unread:
        raise SchemaError(
            schema,
            f"{', '.join(describe(k, node) for k in unread)} on a {node.type!r} is not "
            "supported by the engine (it would be ignored)",
            field=field,
            hint="remove it, or validate this model with Pydantic directly",
        )


BOUND_KEYS = ("gt", "ge", "lt", "le", "multiple_of", "max_digits", "decimal_places")


def _leaf(walker: Walker, field: str, node: Node, value: Value, guard: pl.Expr) -> Parsed:
    parser = LEAVES[node.type]
    view = walker.config.leaf_view()
    shape = walker.column_shape.get(field)
    original, walked = node.raw, node
    if shape and node.type == "decimal":
        # The column's shape from constraints Pydantic applies later (for the column only:
        # the checks themselves stay Pydantic's, in its order). Reads of the shaped view
        # count as reads of the node itself (the ledger checks the node).
        node = Node({**node.raw, **shape})
        node.read = walked.read
    try:
        if node.get("strict", view.get("strict", False)):
            parsed = strict_parse(node.type, parser, value, node, view)
        else:
            parsed = parser(value, node, view)
    except Unsupported as exc:
        raise SchemaError(
            walker.name, f"cannot compile {exc.problem}", field=field, hint=f"use {exc.instead}"
        ) from exc
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a bound Polars cannot hold (also Rust panics, BaseException)
        bounds = {k: node.raw[k] for k in BOUND_KEYS if k in node.raw}
        raise SchemaError(
            walker.name,
            f"cannot compile a {node.type!r} with {bounds or node.raw} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})",
            field=field,
            hint="use bounds a column of the field's type can hold (at most 38 digits, years "
            "1-9999), or validate this model with Pydantic directly",
        ) from exc
    unread = walker.config.unread_for(node.type, view)
    if unread:
        raise SchemaError(
            walker.name,
            f"config {', '.join(describe(k, walker.config) for k in unread)} is not supported "
            f"for a {node.type!r} field (it would be ignored)",
            field=field,
        )
    guarded = dataclasses.replace(
        parsed,
        rules=tuple(_guarded(rule, guard) for rule in parsed.rules),
        python=None if parsed.python is None else (parsed.python & guard),
    )
    decided = with_oracle(guarded, original, walker.config.raw, value)
    return dataclasses.replace(decided, steps=(f"{node.type}: " + "; ".join(decided.steps),))


def _nullable(walker: Walker, field: str, node: Node, value: Value, guard: pl.Expr) -> Parsed:
    if value.kind is None:  # a CSV cell is never null, only absent
        return walk(walker, field, node["schema"], value, guard)
    inner = walk(walker, field, node["schema"], value, guard & ~value.is_null)
    return dataclasses.replace(
        inner,
        value=pl.when(value.is_null).then(None).otherwise(inner.value),
        steps=("null allowed", *inner.steps),
    )


def _validator_label(node: Node) -> str:
    return getattr(node["function"]["function"], "__name__", "validator")


def _python_validator(
    walker: Walker, field: str, node: Node, value: Value, guard: pl.Expr
) -> Parsed:
    """before, wrap and plain validators: every row reaching them goes through Pydantic."""
    label = _validator_label(node)
    if "schema" not in node:
        raise SchemaError(
            walker.name,
            f"cannot compile validator {label} ({node.type}) without an inner type",
            field=field,
            hint="use an after validator (AfterValidator / mode='after') on a supported type",
        )
    inner = walk(walker, field, node["schema"], value, guard)
    return dataclasses.replace(
        inner,
        steps=(*inner.steps, f"validator {label} ({node.type}): no vectorized twin, Pydantic"),
        python=guard,
    )


def _column_shape(function: Any) -> dict[str, Any]:
    """The decimal column shape a Pydantic constraint applied after a validator gives
    (``Field(decimal_places=2)`` on ``Annotated[Decimal, AfterValidator(f)]`` becomes
    ``functools.partial(decimal_places_validator, decimal_places=2)``)."""
    if not isinstance(function, functools.partial):
        return {}
    name = getattr(function.func, "__name__", "")
    if getattr(function.func, "__module__", "") != "pydantic._internal._validators":
        return {}
    if name == "decimal_places_validator":
        return {"column_decimal_places": function.keywords["decimal_places"]}
    if name == "max_digits_validator":
        return {"column_max_digits": function.keywords["max_digits"]}
    return {}


def _after_validator(
    walker: Walker, field: str, node: Node, value: Value, guard: pl.Expr
) -> Parsed:
    function = node["function"]["function"]
    walker.column_shape.setdefault(field, {}).update(_column_shape(function))
    inner = walk(walker, field, node["schema"], value, guard)
    label = _validator_label(node)
    twin = twin_of(function)
    if twin is None:
        inner_ok = pl.lit(True)
        for rule in inner.rules:
            inner_ok = inner_ok & ~rule.fails.fill_null(False)
        rows = guard & inner_ok
        return dataclasses.replace(
            inner,
            steps=(*inner.steps, f"validator {label}: no vectorized twin, Pydantic"),
            python=rows if inner.python is None else (inner.python | rows),
        )
    context = dataclasses.replace(walker.vector_context, field_name=field)
    # The twin's input is the value before it, computed once as a column: the twin reads it,
    # and errors show it as their input.
    before = Helper(validator_input_column(field, label), inner.value)
    outcome = twin(pl.col(before.name), context)
    if not isinstance(outcome, Outcome):
        raise SchemaError(
            walker.name, f"vectorized twin of {label} must return an Outcome", field=field
        )
    # Pydantic reports a validator's error with the field's input as given, not the value the
    # validator received.
    rules = (*inner.rules, *(_check_rule(check, guard) for check in outcome.checks))
    new_value = pl.col(before.name) if outcome.value is None else outcome.value
    helpers = (*inner.helpers, before)
    dtype = walker.infer_dtype(new_value, helpers)
    return dataclasses.replace(
        inner,
        value=new_value,
        rules=rules,
        dtype=dtype,
        steps=(*inner.steps, f"validator {label}: vectorized twin"),
        helpers=helpers,
        sql_type=inner.sql_type if dtype == inner.dtype else None,
    )


def _lax_or_strict(walker: Walker, field: str, node: Node, value: Value, guard: pl.Expr) -> Parsed:
    strict = node.get("strict", walker.config.get("strict", False))
    branch = node["strict_schema"] if strict else node["lax_schema"]
    node.read.update({"strict_schema", "lax_schema"})  # the other branch is never taken
    return walk(walker, field, branch, value, guard)


def _chain(walker: Walker, field: str, node: Node, value: Value, guard: pl.Expr) -> Parsed:
    """Steps applied one after the other (Pydantic's way of putting constraints after a
    validator): the first gives the type; what the later ones do is left to Pydantic."""
    steps = node["steps"]
    first = walk(walker, field, steps[0], value, guard)
    return dataclasses.replace(
        first,
        steps=(*first.steps, f"then {len(steps) - 1} more step(s) after it: Pydantic"),
        python=guard,
    )


def _json_or_python(walker: Walker, field: str, node: Node, value: Value, guard: pl.Expr) -> Parsed:
    # model_validate(dict) is Python-mode validation: the JSON branch is never taken.
    node.read.add("json_schema")
    return walk(walker, field, node["python_schema"], value, guard)


NODES: dict[str, Handler] = {
    **dict.fromkeys(LEAVES, _leaf),
    "nullable": _nullable,
    "function-after": _after_validator,
    "function-before": _python_validator,
    "function-wrap": _python_validator,
    "function-plain": _python_validator,
    "lax-or-strict": _lax_or_strict,
    "json-or-python": _json_or_python,
    "chain": _chain,
}


def _check_rule(check: Check, guard: pl.Expr) -> Rule:
    return Rule(
        check.error_type,
        check.fails.fill_null(False) & guard,
        pydantic_message(check),
        describe="custom check",
    )


def _guarded(rule: Rule, guard: pl.Expr) -> Rule:
    return dataclasses.replace(rule, fails=rule.fails.fill_null(False) & guard)
