"""Keeping account of a core schema: every key the compiler meets is used, or compiling fails.

A core-schema node (or the model's config) is wrapped in a :class:`Node` that remembers which
keys were read. Once a node is compiled, a key nobody read is a constraint the engine would
silently drop, so :meth:`Node.unread` names it and the compiler refuses the model. Keys that
cannot change what ``model_validate`` does with a dict (serialization, JSON-schema metadata)
are listed here as inert, by name; any other key, including one a future Pydantic adds, must
be read by the code that enforces it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

# Node keys that never change validation of a dict input.
INERT_KEYS = frozenset({"type", "ref", "metadata", "serialization"})
INERT_BY_TYPE: dict[str, frozenset[str]] = {
    # JSON-schema generation only.
    "function-before": frozenset({"json_schema_input_schema"}),
    "function-wrap": frozenset({"json_schema_input_schema"}),
    "function-plain": frozenset({"json_schema_input_schema"}),
    # Serialization, and assignment after validation.
    "model-field": frozenset(
        {"frozen", "serialization_alias", "serialization_exclude", "serialization_exclude_if"}
    ),
    # Serialization, attribute access (not dicts), the model's name in errors of other types.
    "model-fields": frozenset({"computed_fields", "from_attributes", "model_name"}),
    # The class to build, assignment and revalidation of instances, generics' bookkeeping.
    "model": frozenset({"cls", "frozen", "generic_origin", "revalidate_instances"}),
}

# Config keys that never change validation of a dict input (serialization, caching, titles,
# attribute access, other input types).
INERT_CONFIG = frozenset(
    {
        "title",
        "cache_strings",
        "from_attributes",
        "revalidate_instances",
        "ser_json_bytes",
        "ser_json_inf_nan",
        "ser_json_temporal",
        "ser_json_timedelta",
        "serialize_by_alias",
        "polymorphic_serialization",
        "typed_dict_total",
        "url_preserve_empty_path",
        "validation_error_cause",
        "val_json_bytes",
    }
)

# Config keys that pydantic-core reads when it builds a validator of these types: the
# engine's parser for the type must read them too (checked for each field).
CONFIG_BY_TYPE: dict[str, frozenset[str]] = {
    "str": frozenset(
        {
            "strict",
            "str_strip_whitespace",
            "str_to_lower",
            "str_to_upper",
            "str_min_length",
            "str_max_length",
            "coerce_numbers_to_str",
            "regex_engine",
        }
    ),
    "float": frozenset({"strict", "allow_inf_nan"}),
    "decimal": frozenset({"strict", "allow_inf_nan"}),
}
LEAF_CONFIG = frozenset({"strict"})  # every leaf type reads it

# Config keys the model as a whole reads (extras, aliases, error shape, defaults).
MODEL_CONFIG = frozenset(
    {
        "extra_fields_behavior",
        "validate_by_name",
        "validate_by_alias",
        "loc_by_alias",
        "hide_input_in_errors",
        "validate_default",
    }
)


class Node(Mapping[str, Any]):
    """A read-only view of a schema dict that records which keys were looked at."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self.raw[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return key in self.raw

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self.raw.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def type(self) -> str:
        return str(self.raw["type"])

    def unread(self) -> list[str]:
        """Keys with a value that nobody read and that could change validation."""
        inert = INERT_KEYS | INERT_BY_TYPE.get(self.type, frozenset())
        return [k for k in self.raw if k not in self.read and k not in inert]


class Config(Node):
    """The model's config: per field, the keys of its leaf type must be read."""

    @property
    def type(self) -> str:
        return "config"

    def leaf_view(self) -> Node:
        """A fresh view for one leaf's parser, so its own reads can be checked."""
        return Config(self.raw)

    def unread_for(self, leaf_type: str, view: Node) -> list[str]:
        wanted = CONFIG_BY_TYPE.get(leaf_type, frozenset()) | LEAF_CONFIG
        return [k for k in view.raw if k in wanted and k not in view.read]

    def unknown(self) -> list[str]:
        """Config keys the engine has no account of at all."""
        known = INERT_CONFIG | MODEL_CONFIG | LEAF_CONFIG
        for keys in CONFIG_BY_TYPE.values():
            known |= keys
        return [k for k in self.raw if k not in known]


def describe(key: str, node: Mapping[str, Any]) -> str:
    value = node[key] if not isinstance(node, Node) else node.raw[key]
    shown = getattr(value, "__name__", None) or repr(value)
    return f"{key}={shown}"
