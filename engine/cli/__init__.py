"""The command line, one module per concept; ``cli.py`` at the top is its entry point.

Each command parses its options, calls one engine function and turns an engine error into a
one-line message and a non-zero exit code. Everything here is also reachable from Python.
A command's module is imported when that command runs, so that ``export`` does not pay for
loading the validation compiler, nor ``run`` for the Kafka client and the web server.
"""

from __future__ import annotations

import importlib
import inspect
import os
from typing import NoReturn

import click

from engine import interrupts, start_up

# Commands that handle SIGINT/SIGTERM themselves (uvicorn stops the server gracefully).
OWN_SIGNALS = {"serve"}
# Command name -> the engine.cli module defining it (the function has the command's name).
COMMANDS = {
    "run": "files",
    "summary": "reports",
    "generate": "files",
    "export": "reports",
    "sql": "reports",
    "report": "reports",
    "schema": "schemas",
    "consume": "kafka",
    "produce": "kafka",
    "serve": "server",
    "replay": "tables",
    "delete-run": "tables",
    "prune": "tables",
    "compact": "tables",
    "lake": "lake",
}


class Group(click.Group):
    """A group whose list of commands shows each one's first paragraph of help whole,
    wrapped to the terminal (click's own cuts it to one line, ending in "...")."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.short_help or first_paragraph(command.help or "")))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def first_paragraph(text: str) -> str:
    return " ".join(inspect.cleandoc(text).split("\n\n")[0].split())


class LazyGroup(Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name in OWN_SIGNALS:
            interrupts.uninstall()
        module = importlib.import_module(f"engine.cli.{COMMANDS[cmd_name]}")
        command = getattr(module, cmd_name.replace("-", "_"))
        assert isinstance(command, click.Command)
        interrupts.reclaim()  # from Polars, which the command's module imported
        start_up.collect_now()
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
def main() -> None:
    """Validate CSV / NDJSON / JSON files (and Kafka topics) against a Pydantic model with
    vectorized Polars rules, and store valid rows, errors and raw lineage in one DuckDB file."""
    # The Rust libraries (delta-rs, its AWS client) log warnings to stderr, several lines each
    # (no region from the instance metadata service, say): a failure must stay one line.
    os.environ.setdefault("RUST_LOG", "error")


def command_line(args: list[str] | None = None) -> NoReturn:
    """The process's entry point: run one command and exit with its code.

    Exit codes: 0 success, 1 a runtime failure (the database could not be written), 2 bad
    usage or an input that cannot be read, 128 + the signal number when interrupted (130 on
    Ctrl-C, 143 on SIGTERM), with one line on stderr whatever the interrupt hit.
    """
    with start_up.collecting_after_start_up():
        interrupts.exit_after(lambda: main.main(args))


__all__ = ["command_line", "main"]
