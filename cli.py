"""Command line: ``python cli.py --help``. The commands live in engine/cli/."""

import importlib
import os

if __name__ == "__main__":  # Ctrl-C and SIGTERM handled from here on, imports included
    # NumPy's OpenBLAS starts a thread per core that spins for about a second after import
    # (0.13 s of CPU, a core's worth while a run starts); the engine calls no BLAS routine.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from engine import interrupts, start_up

    with start_up.collecting_after_start_up():
        interrupts.exit_after(lambda: importlib.import_module("engine.cli").main.main())

from engine.cli import command_line, main

__all__ = ["command_line", "main"]
