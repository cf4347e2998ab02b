"""UUID: the hyphenated and the 32-hex-digit forms vectorized, stored as DuckDB UUID."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from engine.validation.common import message
from engine.validation.rules import Helper, Parsed, Rule, Value

HYPHENATED = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
SIMPLE = r"^[0-9a-fA-F]{32}$"


def _canonical(text: pl.Expr) -> Callable[[pl.DataFrame], pl.Series]:
    """The UUID lower-cased and hyphenated where the text is one of the two forms, else null.
    The hyphenated form only needs lower-casing; the 32-digit form is cut on its rows only."""

    def compute(frame: pl.DataFrame) -> pl.Series:
        t, low = pl.col("t"), pl.col("low")
        parts = (
            frame.lazy()
            .select(t=text)
            .select(
                hyphenated=t.str.contains(HYPHENATED),
                simple=t.str.contains(SIMPLE),
                low=t.str.to_lowercase(),
            )
            .collect()
        )
        canonical = parts.select(pl.when("hyphenated").then(low)).to_series()
        simple = parts.get_column("simple").fill_null(False)
        if simple.any():
            cuts = [(0, 8), (8, 4), (12, 4), (16, 4), (20, 12)]
            joined = parts.filter(simple).select(
                pl.concat_str([low.str.slice(a, n) for a, n in cuts], separator="-")
            )
            canonical = canonical.scatter(simple.arg_true(), joined.to_series())
        return canonical

    return compute


def parse_uuid(value: Value, schema: Mapping[str, Any], config: Mapping[str, Any]) -> Parsed:
    text = value.text
    helper = Helper.staged(value.helper("uuid"), _canonical(text), text)
    parsed = pl.col(helper.name)
    canonical = parsed
    ok = parsed.is_not_null()
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
        helpers=(helper,),
        sql_type="UUID",
    )
