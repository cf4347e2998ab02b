"""Command line: ``python cli.py --help``. The commands live in engine/cli/."""

import importlib

if __name__ == "__main__":  # Ctrl-C and SIGTERM handled from here on, imports included
    from engine import interrupts

    interrupts.exit_after(lambda: importlib.import_module("engine.cli").main.main())

from engine.cli import command_line, main

__all__ = ["command_line", "main"]
