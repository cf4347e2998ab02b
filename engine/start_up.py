"""A command-line process's start-up without the garbage collector.

Importing the libraries and the engine makes about 63,000 objects the collector tracks, which
live as long as the process, and it walked them over and over while they were made: a 4-row
run made 165 collections taking 34 ms (16 taking 2.5 ms with this). A process that runs one
command (``cli.py``, ``command_line``) turns the collector off until the command's modules
are imported, then freezes what exists (``gc.freeze``: never walked again) and turns it back
on. Library users and tests that call the commands in their own process are left alone.
"""

from __future__ import annotations

import gc

_later = False


def collect_later() -> None:
    """Turn the collector off until ``collect_now`` (called once the command is known)."""
    global _later
    _later = True
    gc.disable()


def collect_now() -> None:
    """Freeze what start-up made and turn the collector back on, if ``collect_later`` was
    called; otherwise nothing."""
    global _later
    if _later:
        _later = False
        gc.freeze()
        gc.enable()
