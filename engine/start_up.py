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
from collections.abc import Iterator
from contextlib import contextmanager

_later = False
_was_on = True


@contextmanager
def collecting_after_start_up() -> Iterator[None]:
    """Around a process's one command: the collector off until ``collect_now`` (called once
    the command is known), and back as it was however the command ends (an unknown command
    is never known: nothing is frozen then)."""
    global _later, _was_on
    _later, _was_on = True, gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if _later:
            _later = False
            if _was_on:
                gc.enable()


def collect_now() -> None:
    """Freeze what start-up made and turn the collector back on (if it was on), inside
    ``collecting_after_start_up``; otherwise nothing."""
    global _later
    if _later:
        _later = False
        gc.freeze()
        if _was_on:
            gc.enable()
