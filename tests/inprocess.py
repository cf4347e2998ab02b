"""``cli.py`` run inside the test process, answering as ``subprocess.run`` would.

A process start costs about 1.2 s (the interpreter and the imports); tests that only look at
what a command prints, its exit code and what it stored do not need one. What a separate
process would show is kept: the program name in usage lines (``cli.py``), the environment and
the working directory asked for, anything written to file descriptors 1 and 2 below Python
(C and Rust libraries), the warnings a fresh interpreter prints to stderr, and the traceback
and exit code 1 of an uncaught exception.

Tests about the process itself (signals, exit codes at shutdown, several writers at once)
keep running ``cli.py`` in its own process.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import traceback
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from unittest import mock

from click.testing import CliRunner

import cli
from engine import pipeline


def _fresh_filters() -> None:
    """A fresh interpreter's warning filters (python -W and PYTHONWARNINGS unset)."""
    warnings.resetwarnings()
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.filterwarnings("ignore", category=category, append=True)


@contextlib.contextmanager
def _descriptors() -> Iterator[list[str]]:
    """What is written to file descriptors 1 and 2 meanwhile, not through sys.stdout/stderr."""
    found = ["", ""]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        saved = [os.dup(1), os.dup(2)]
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            yield found
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            for i, file in enumerate((out, err)):
                file.seek(0)
                found[i] = file.read().decode("utf-8", "replace")


def _overrides(env: Mapping[str, str] | None) -> dict[str, str | None]:
    """The changes to os.environ that make it ``env`` (None removes a variable)."""
    if env is None:
        return {}
    changes: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    changes.update({k: v for k, v in env.items() if os.environ.get(k) != v})
    return changes


def run_cli(
    args: list[str],
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python cli.py *args`` in this process: exit code, stdout and stderr as text."""
    runner = CliRunner()
    place = contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext()
    # What would outlive the command in this process: `run` lowers every other thread's
    # priority for good (a process of its own ends with it), and the CLI quiets Rust's log.
    no_priority = mock.patch.object(pipeline, "yield_to_current_thread", return_value=0)
    rust_log = os.environ.get("RUST_LOG")
    with (
        no_priority,
        place,
        warnings.catch_warnings(record=True) as caught,
        _descriptors() as below,
    ):
        _fresh_filters()
        result = runner.invoke(
            cli.main, args, env=_overrides(env), prog_name="cli.py", catch_exceptions=True
        )
    if rust_log is None:
        os.environ.pop("RUST_LOG", None)
    else:
        os.environ["RUST_LOG"] = rust_log
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        exc = result.exception
        stderr += "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for w in caught:
        stderr += warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line)
    return subprocess.CompletedProcess(
        ["cli.py", *args], result.exit_code, result.stdout + below[0], stderr + below[1]
    )
