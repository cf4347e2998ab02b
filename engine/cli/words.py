"""How the command line names a setting in a remedy (see ``engine.errors.Remedy``)."""

from __future__ import annotations

import shlex

from engine.errors import FLAGS

# Settings whose option is not their name with dashes (the library's name -> the option's).
OPTIONS = {
    "topics": "topic",
    "stop_when_idle_s": "stop-when-idle",
    "give_up_after_s": "give-up-after",
    "extra": "kafka-config",
}


def cli_spelling(setting: str, values: tuple[str, ...]) -> str:
    """``--format csv|ndjson|json``, ``--force``, ``--delimiter ';'`` (quoted for a shell;
    a tab is ``--delimiter tab``)."""
    option = "--" + OPTIONS.get(setting, setting).replace("_", "-")
    if setting in FLAGS or not values:
        return option
    if len(values) == 1:
        # a tab as the word the options take for it (a quoted tab cannot be seen or typed)
        value = "tab" if values[0] == "\t" else shlex.quote(values[0])
        return f"{option} {value}"
    return f"{option} {'|'.join(values)}"
