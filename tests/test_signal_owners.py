"""A command line's signals reach only its own handler, not a library's.

Polars hooks SIGINT below Python when it is imported: a SIGINT that came while any thread ran
a Polars query made that query raise KeyboardInterrupt in its own thread. In a file run that
was the validating thread, and its KeyboardInterrupt raced the main thread's Interrupted: CI
once saw a traceback ("Exception ignored in: <generator object prefetch>") and two error lines
instead of one. Each case below imports Polars the way a command does (with the command's
module, or inside the command), then sends SIGINT while a thread runs Polars queries: the
queries finish, and the main thread gets the one Interrupted.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from engine import interrupts
    from engine.errors import Interrupted

    interrupts.install()
    from engine.cli import main
    import click

    how = sys.argv[1]
    if how == "run":  # polars comes with the command's module
        main.get_command(click.Context(main), "run")
    else:  # inside the command, which then fails on its arguments
        try:
            main(how.split() + [sys.argv[2]], standalone_mode=False)
        except SystemExit:
            pass
    import polars as pl

    QUERIES = 40
    done = []

    def queries():
        frame = pl.DataFrame({"a": range(2_000_000)})
        try:
            for _ in range(QUERIES):
                frame.lazy().group_by(pl.col("a") % 1000).len().collect()
                done.append(1)
        except BaseException as exc:
            done.append(repr(exc))

    worker = threading.Thread(target=queries)
    worker.start()
    while not done:
        time.sleep(0.001)
    main_thread = "no signal handled"
    try:
        os.kill(os.getpid(), signal.SIGINT)
        worker.join()
    except Interrupted as exc:
        main_thread = str(exc)
        worker.join()
    print(main_thread, done[-1], len(done))
    """
)


@pytest.mark.parametrize("how", ["run", "replay --db", "lake compact"])
def test_polars_queries_in_a_thread_do_not_hear_the_command_lines_sigint(
    how: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, how, str(tmp_path / "x")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert (result.returncode, result.stdout) == (0, "interrupted by SIGINT 1 40\n"), result


def test_a_librarys_keyboardinterrupt_after_the_signal_still_ends_in_one_line() -> None:
    # A library that heard the signal too (Polars, before its hook was taken back) raises
    # KeyboardInterrupt where the engine's Interrupted was: still one line and 130.
    script = textwrap.dedent(
        """
        import os, signal, time
        from engine import interrupts
        from engine.cli.options import handle_errors
        from engine.errors import Interrupted

        @handle_errors
        def command():
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            except Interrupted:
                raise KeyboardInterrupt from None

        interrupts.exit_after(command)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        130,
        "",
        "error: interrupted by SIGINT (anything not yet committed was rolled back)\n",
    )
