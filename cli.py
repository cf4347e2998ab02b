"""Command line: ``python cli.py --help``. The commands live in engine/cli/."""

from engine.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
