"""The ``error_rules`` table: each rule a schema version reports, written once.

A validator numbers its rules from 0 (``BatchValidator.rules``); the table gives each
(schema fingerprint, type, loc, message) one ``rule_id`` for good. ``rule_ids`` finds or
adds a validator's rules, in the caller's transaction (so a run that rolls back takes its new
rules with it), and ``rule_id_sql`` turns a validator's codes into those ids as DuckDB
appends the invalid rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from engine.store.ddl import RULES
from engine.store.store import Store
from engine.validation.error_list import RULE_IDS, RuleText


def rule_ids(store: Store, fingerprint: str, rules: Sequence[RuleText]) -> tuple[int, ...]:
    """The ``rule_id`` of each rule, adding those the table does not have yet."""
    key = (fingerprint, tuple(rules))
    cached = store.rule_ids.get(key)
    if cached is not None:
        return cached
    found = store.rows(
        f'SELECT rule_id, "type", loc, msg FROM {RULES} WHERE schema_fingerprint = ?',
        [fingerprint],
    )
    known = {RuleText(str(t), tuple(loc), m): int(rule_id) for rule_id, t, loc, m in found}
    missing = [rule for rule in dict.fromkeys(rules) if rule not in known]
    if missing:
        values = ", ".join("(?, ?, ?::VARCHAR[], ?)" for _ in missing)
        added = store.rows(
            f"INSERT INTO {RULES} SELECT nextval('error_rule_ids'), * FROM (VALUES {values}) "
            'RETURNING rule_id, "type", loc, msg',
            [v for rule in missing for v in (fingerprint, rule.type, list(rule.loc), rule.msg)],
        )
        known.update({RuleText(str(t), tuple(loc), m): int(i) for i, t, loc, m in added})
    ids = tuple(known[rule] for rule in rules)
    store.rule_ids[key] = ids
    return ids


def rule_id_sql(ids: Sequence[int]) -> str:
    """The SQL that maps a row's list of a validator's codes (column ``rule_ids``; null where
    an error is given whole) to ``rule_id``s: an offset when the ids are consecutive."""
    if not ids or all(b == a + 1 for a, b in pairwise(ids)):
        return f"list_transform({RULE_IDS}, lambda c: c + {ids[0] if ids else 0})"
    listed = ", ".join(str(i) for i in ids)
    return f"list_transform({RULE_IDS}, lambda c: [{listed}][c + 1])"
