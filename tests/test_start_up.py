"""A command-line process starts with the garbage collector off, and freezes what start-up
made once the command's modules are imported (``engine.start_up``)."""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from engine import start_up
from engine.cli import command_line
from tests.conftest import ROOT


@pytest.fixture
def collector() -> Iterator[None]:
    """The collector, and the signal handlers ``command_line`` installs in this process, as
    they were (left installed, they failed later tests that signal their own children)."""
    was = gc.isenabled()
    handlers = {
        sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)
    }
    yield
    gc.unfreeze()
    gc.enable() if was else gc.disable()
    signal.setitimer(signal.ITIMER_REAL, 0)
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def test_collection_waits_for_the_command_then_start_up_is_frozen(collector: None) -> None:
    gc.unfreeze()
    with start_up.collecting_after_start_up():
        assert not gc.isenabled()
        start_up.collect_now()
        assert gc.isenabled()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        start_up.collect_now()  # once only (frozen objects may still be freed)
        assert gc.get_freeze_count() <= frozen
    assert gc.isenabled()
    assert 0 < gc.get_freeze_count() <= frozen


def test_a_command_that_never_starts_leaves_the_collector_on(collector: None) -> None:
    """An unknown command or a usage error imports no command module (independent attack:
    ``command_line(["nosuch"])`` in a process left the collector off)."""
    for argv, known in ((["nosuch"], False), (["run", "--bogus"], True), (["--help"], True)):
        gc.unfreeze()
        with pytest.raises(SystemExit):
            command_line(argv)
        assert gc.isenabled(), argv
        # A known command is imported before its options are read, and --help imports
        # every command to list them: start-up is over.
        assert (gc.get_freeze_count() > 0) is known, argv


def test_without_collect_later_nothing_changes(collector: None) -> None:
    gc.unfreeze()
    start_up.collect_now()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


PROBE = """
import gc, sys
sys.argv = ["cli.py", "schema", "list"]
import engine.cli.schemas as schemas
real = schemas.schema_list.callback
def probe(*args, **kwargs):
    print("collector", gc.isenabled(), gc.get_freeze_count() > 0, flush=True)
    return real(*args, **kwargs)
schemas.schema_list.callback = probe
import runpy
runpy.run_path("cli.py", run_name="__main__")
"""


def test_a_cli_process_runs_its_command_with_the_collector_on() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "collector True True"


def test_a_collector_the_caller_turned_off_stays_off(collector: None) -> None:
    gc.disable()
    for argv in (["nosuch"], ["run", "--bogus"]):
        gc.unfreeze()
        with pytest.raises(SystemExit):
            command_line(argv)
        assert not gc.isenabled(), argv
