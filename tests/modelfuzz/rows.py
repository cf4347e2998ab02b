"""Rows for a model: keys present, absent, doubled and unknown; values from each field's
adversarial pool or from the values Pydantic accepts for it; NDJSON lines with JSON's own
traps (duplicate keys, trailing commas, lone surrogates, NaN, broken records)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from random import Random
from typing import Any

from pydantic import BaseModel, ValidationError

from tests.modelfuzz.spec import FieldSpec, ModelSpec
from tests.modelfuzz.values import json_candidates, text_candidates

EXTRA_KEYS = ["extra", "Extra Col", "ÿ", "id", "_", "note "]  # "__x" is refused (README)
NOT_OBJECTS = ["[1, 2]", "1", '"text"', "null", "true", "[]", "[{}]"]
BROKEN = [
    "{",
    '{"a": 1',
    "{'a': 1}",
    "{a: 1}",
    '{"a": 01}',
    '{"a": +1}',
    '{"a": .5}',
    '{"a": 1.}',
    '{"a": tru}',
    '{"a": "x\ty"}',
    '{"a": 1} x',
    '{"a": 1}{"b": 2}',
    '{"a": 1,,}',
    '{"a": "\\x41"}',
    '{"a": "\\u12"}',
]
SURROGATES = ['"\\ud800"', '"\\udc00x"', '"\\ud83d\\ude00"', '"a\\ud800b"']
# The JSON traps an NDJSON line may get; the explorer can switch one off while its fix is pending.
TRAPS = frozenset(
    {"not_object", "broken", "duplicate_key", "surrogate", "escaped_key", "trailing_comma"}
)


@dataclass
class Rows:
    """One logical data set: the CSV file's header and records, and the NDJSON file's lines."""

    columns: list[str]
    records: list[list[str]]
    lines: list[str]


def _keys_for(model: ModelSpec, spec: FieldSpec) -> list[str]:
    if not spec.aliases:
        return [spec.name]
    return [*spec.aliases, spec.name]  # the name is an unknown key unless validated by name


def accepted(model: type[BaseModel], key: str, values: list[Any]) -> list[Any]:
    """The values Pydantic accepts for ``key`` on its own (to make valid rows common)."""
    good = []
    for value in values:
        try:
            model.model_validate({key: value})
        except ValidationError as exc:
            if any(e["loc"][:1] == (key,) for e in exc.errors()):
                continue
        except (TypeError, ValueError, ArithmeticError):  # Pydantic itself fails on it
            continue
        good.append(value)
    return good


class RowMaker:
    """Draws rows for one model from a seeded generator."""

    def __init__(
        self,
        spec: ModelSpec,
        model: type[BaseModel],
        rng: Random,
        traps: frozenset[str] = TRAPS,
    ) -> None:
        self.spec = spec
        self.rng = rng
        self.traps = traps
        self.text = {f.name: text_candidates(f, rng) for f in spec.fields}
        self.json = {f.name: json_candidates(f, rng) for f in spec.fields}
        self.good_text: dict[str, list[str]] = {}
        self.good_json: dict[str, list[Any]] = {}
        for f in spec.fields:
            key = _keys_for(spec, f)[0]
            self.good_text[f.name] = [v for v in accepted(model, key, self.text[f.name]) if v]
            self.good_json[f.name] = accepted(model, key, self.json[f.name])

    def pairs(self, typed: bool) -> list[tuple[str, Any]]:
        rng = self.rng
        clean = rng.random() < 0.45
        out: list[tuple[str, Any]] = []
        for f in self.spec.fields:
            if rng.random() < (0.1 if clean else 0.2):
                continue
            keys = _keys_for(self.spec, f)
            good = (self.good_json if typed else self.good_text)[f.name]
            pool = (self.json if typed else self.text)[f.name]
            use_good = good and (clean or rng.random() < 0.6)
            chosen = [keys[0] if rng.random() < 0.7 else rng.choice(keys)]
            if len(keys) > 1 and rng.random() < 0.1:  # alias and name, or two choices
                chosen.append(rng.choice([k for k in keys if k != chosen[0]]))
            for key in chosen:
                out.append((key, rng.choice(good) if use_good else rng.choice(pool)))
        if rng.random() < 0.15:
            out.append((rng.choice(EXTRA_KEYS), rng.choice(["x", "", "1", " "])))
        if rng.random() < 0.2:
            rng.shuffle(out)
        return out

    def csv_rows(self, count: int) -> tuple[list[str], list[list[str]]]:
        rows = [dict(self.pairs(typed=False)) for _ in range(count)]
        columns: list[str] = []
        for f in self.spec.fields:
            columns.extend(k for k in _keys_for(self.spec, f) if k not in columns)
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        if self.rng.random() < 0.3:
            self.rng.shuffle(columns)
        used = [c for c in columns if any(c in row for row in rows) or self.rng.random() < 0.5]
        return used, [[row.get(c, "") for c in used] for row in rows]

    def line(self, typed: bool) -> str:
        rng = self.rng
        roll = rng.random()
        traps = self.traps
        if roll < 0.02 and "not_object" in traps:
            return rng.choice(NOT_OBJECTS)
        if 0.02 <= roll < 0.04 and "broken" in traps:
            return rng.choice(BROKEN)
        pairs = self.pairs(typed)
        if (
            pairs and rng.random() < 0.05 and "duplicate_key" in traps
        ):  # a duplicate key: Python's json keeps the last
            key, _ = rng.choice(pairs)
            pairs.append((key, rng.choice(self.json[self._field_of(key)] or ["x"])))
        ascii_only = rng.random() < 0.3
        tokens = [f"{_dump(k, ascii_only)}: {_dump(v, ascii_only)}" for k, v in pairs]
        if tokens and rng.random() < 0.03 and "surrogate" in traps:
            tokens[rng.randrange(len(tokens))] = (
                f"{_dump(pairs[0][0], True)}: {rng.choice(SURROGATES)}"
            )
        if tokens and rng.random() < 0.03 and "escaped_key" in traps:
            key = pairs[0][0]
            escaped = "".join(f"\\u{ord(c):04x}" for c in key)
            tokens[0] = f'"{escaped}": {_dump(pairs[0][1], True)}'
        sep = rng.choice([", ", ",", " , ", ",\t"])
        comma = tokens and rng.random() < 0.03 and "trailing_comma" in traps
        body = "{" + sep.join(tokens) + ("," if comma else "") + "}"
        return body if rng.random() < 0.9 else f" {body}\t"

    def _field_of(self, key: str) -> str:
        for f in self.spec.fields:
            if key in _keys_for(self.spec, f):
                return f.name
        return self.spec.fields[0].name

    def rows(self, text_rows: int, typed_rows: int) -> Rows:
        columns, records = self.csv_rows(text_rows)
        lines = [self.line(typed=False) for _ in range(text_rows // 2)]
        lines += [self.line(typed=True) for _ in range(typed_rows)]
        return Rows(columns, records, lines)


def _dump(value: Any, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only or _has_surrogate(value))


def _has_surrogate(value: Any) -> bool:
    return isinstance(value, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in value)
