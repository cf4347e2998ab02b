"""UUID: the hyphenated and the 32-hex-digit forms vectorized, stored as DuckDB UUID."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from engine.validation.common import message
from engine.validation.rules import Parsed, Rule, Value

HYPHENATED = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
SIMPLE = r"^[0-9a-fA-F]{32}$"


def parse_uuid(value: Value, schema: Mapping[str, Any], config: Mapping[str, Any]) -> Parsed:
    text = value.text
    plain = text.str.replace_all("-", "", literal=True).str.to_lowercase()
    ok = text.str.contains(HYPHENATED) | text.str.contains(SIMPLE)
    canonical = pl.concat_str(
        [
            plain.str.slice(0, 8),
            plain.str.slice(8, 4),
            plain.str.slice(12, 4),
            plain.str.slice(16, 4),
            plain.str.slice(20, 12),
        ],
        separator="-",
    )
    parsed = pl.when(ok).then(canonical)
    rules: list[Rule] = []
    if value.kind is not None:
        wrong = ~value.is_str & ~value.absent
        rules.append(Rule("uuid_type", wrong, message("uuid_type"), describe="JSON string"))
    version = schema.get("version")
    if version is not None:
        # Python's UUID.version is None unless the variant is RFC 4122 (10xx): then no match.
        rfc_4122 = canonical.str.slice(19, 1).is_in(["8", "9", "a", "b"])
        matches = (canonical.str.slice(14, 1) == str(version)) & rfc_4122
        rules.append(
            Rule(
                "uuid_version",
                ok & ~matches,
                message("uuid_version", {"expected_version": version}),
                describe=f"version {version}",
            )
        )
    # Braced and urn: forms, and the exact wording of a parse error, come from Pydantic.
    python = value.is_str & ~value.absent & ~ok.fill_null(False)
    steps = ("hyphenated or 32 hex digits, lower-cased",)
    return Parsed(
        value=parsed,
        rules=tuple(rules),
        dtype=pl.String(),
        steps=steps,
        python=python,
        sql_type="UUID",
    )
