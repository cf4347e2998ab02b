"""What the compiler made of a model: per field its column type, parse steps and checks, and
whether rows are decided vectorized or (for some or all rows) by Pydantic itself."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from engine.store.versions import reserved_fields
from engine.validation.compiler import CompiledSchema, compile_schema


@dataclass(frozen=True)
class FieldExplanation:
    name: str
    input_keys: tuple[str, ...]
    sql_type: str
    requirement: str  # "required", "default: ...", "default factory ..."
    parse: tuple[str, ...]
    checks: tuple[str, ...]
    path: str  # "vectorized", "vectorized; Pydantic for ...", ...


@dataclass(frozen=True)
class Explanation:
    model: str
    table: str
    source: str  # "CSV (text)" or "JSON (typed)"
    extra: str
    unique: tuple[str, ...]
    fields: list[FieldExplanation]
    model_level: list[str]
    storage: list[str]  # what storing the rows would refuse (a field named like run_id)


def _path(notes: tuple[str, ...], has_python_rows: bool) -> str:
    untwinned = [
        n.split(":")[0].removeprefix("validator ") for n in notes if n.endswith(", Pydantic")
    ]
    if untwinned:
        return f"Pydantic for the rows reaching {', '.join(untwinned)} (no vectorized twin); the rest vectorized"
    if has_python_rows:
        return "vectorized; values in the forms named above go to Pydantic"
    return "vectorized"


def explain_compiled(schema: CompiledSchema, storage: list[str] | None = None) -> Explanation:
    fields = []
    for program in schema.fields:
        if program.required:
            requirement = "required"
        elif program.name in schema.defaults:
            factory = schema.defaults[program.name]
            requirement = f"default: {getattr(factory, '__name__', 'factory')}() once per batch"
        else:
            requirement = f"default: {program.default!r}"
        checks = tuple(
            f"{rule.error_type} ({rule.describe})" if rule.describe else rule.error_type
            for rule in program.rules
            if rule.error_type != "missing"
        )
        parse = tuple(program.notes)
        fields.append(
            FieldExplanation(
                program.name,
                program.keys,
                program.sql_type
                + (
                    f" (compression {schema.compression[program.name]} when created)"
                    if program.name in schema.compression
                    else ""
                ),
                requirement,
                parse,
                checks,
                _path(program.notes, program.python_rows is not None),
            )
        )
    model_level = [*schema.model_level.notes]
    if schema.model_level.python == "all":
        model_level.append("every row goes through Pydantic (before/wrap model validator)")
    return Explanation(
        schema.model.__name__,
        schema.table,
        "JSON (typed values)" if schema.typed else "CSV (text values)",
        schema.extra,
        schema.unique,
        fields,
        model_level,
        storage or [],
    )


def explain(model: type[BaseModel], *, typed: bool) -> Explanation:
    """The compiler's reading of ``model``, and what storing its rows would refuse."""
    schema = compile_schema(model, typed=typed)
    return explain_compiled(schema, reserved_fields(schema))
