"""How the command line names a setting in a remedy (see ``engine.errors.Remedy``)."""

from __future__ import annotations

import shlex

from engine.errors import FLAGS


def cli_spelling(setting: str, values: tuple[str, ...]) -> str:
    """``--format csv|ndjson|json``, ``--force``, ``--delimiter ';'`` (quoted for a shell)."""
    option = "--" + setting.replace("_", "-")
    if setting in FLAGS or not values:
        return option
    if len(values) == 1:
        return f"{option} {shlex.quote(values[0])}"
    return f"{option} {'|'.join(values)}"
