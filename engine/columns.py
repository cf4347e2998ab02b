"""The internal column protocol: every column the engine adds to a batch, named in one place.

Input keys keep their own names (a CSV header's, a JSON object's keys). Everything the engine
adds starts with ``__``, which is why a CSV header naming a column ``__...`` is refused: it
could collide with one of these. Sources add the lineage and kind columns, the validator the
rest; nothing else builds these names by hand.
"""

from __future__ import annotations

# -- lineage, set by every source -----------------------------------------------------------
ROW = "__row_number"
LINE = "__line_number"
RAW = "__raw"
MALFORMED = "__malformed"  # an error type when the row could not even be split into fields
MALFORMED_MSG = "__malformed_msg"
KEYS = "__keys"  # JSON sources: every key of the record, when the model forbids extras
NEEDS_PYTHON = "__needs_python"  # JSON sources: a value only Python can represent (surrogates)

KAFKA_TOPIC = "__kafka_topic"
KAFKA_PARTITION = "__kafka_partition"
KAFKA_OFFSET = "__kafka_offset"
KAFKA_KEY = "__kafka_key"
KAFKA_TIMESTAMP = "__kafka_timestamp"
KAFKA_HEADERS = "__kafka_headers"

# -- validation, one set per batch ----------------------------------------------------------
NOW = "__now"  # the batch's validation time (UTC)
PYTHON = "__python"  # the row is decided by Pydantic itself
FIELDS_OK = "__fields_ok"  # every field of the row passed its rules
VALID = "__valid"
ERRORS = "__errors"  # the row's error list, Pydantic's shape


def kind_column(key: str) -> str:
    """JSON sources: the JSON type an input key's value had (``engine.batch.Kind``)."""
    return f"__kind:{key}"


def token_column(key: str) -> str:
    """JSON sources: an input key's value as JSON text (an error's ``input``)."""
    return f"__json:{key}"


def value_column(field: str) -> str:
    """A field's typed value (raw input keeps the plain name)."""
    return f"__v:{field}"


def helper_column(field: str, purpose: str) -> str:
    """An intermediate column a field's parser computes once (see ``rules.Helper``)."""
    return f"__h:{field}:{purpose}"


def helper_mask_column(level: int, index: int) -> str:
    """The rows a level's sparse helpers are computed on (``index``: one per distinct mask);
    dropped once the level's helpers are added."""
    return f"__mask:{level}#{index}"


def validator_input_column(field: str, validator: str) -> str:
    """The value a vectorized twin receives: what the field's value was before it."""
    return f"__in:{field}:{validator}"


def default_column(field: str) -> str:
    """The value a ``default_factory`` returned for this batch."""
    return f"__default:{field}"


def default_unstorable_column(field: str) -> str:
    """True when this batch's ``default_factory`` value cannot be stored (Pydantic decides)."""
    return f"__default_unstorable:{field}"


def rule_column(field: str, index: int) -> str:
    """True on the rows where a field's rule ``index`` fails."""
    return f"__rule:{field}#{index}"


def model_rule_column(index: int) -> str:
    return f"__rule:#model#{index}"


def first_failure_column(field: str) -> str:
    """The index of a field's first failing rule (null when none fails)."""
    return f"__first:{field}"
