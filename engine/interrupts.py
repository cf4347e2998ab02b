"""Ctrl-C and SIGTERM in a command-line process: one clean exception, one line, 128 + signal.

The first SIGINT or SIGTERM raises :class:`~engine.errors.Interrupted` in the main thread,
wherever it is (but inside an import, where it is raised a moment later): a file run rolls back its transaction and records itself failed, and the
command line prints one line and exits 130 (SIGINT) or 143 (SIGTERM). It is not a
KeyboardInterrupt, which click would turn into "Aborted!" and exit code 1.

A query DuckDB is running when the signal comes ends with DuckDB's own error instead (the
exception raised by the handler does not survive it), so which signal came is also kept
here: ``received()`` tells the command line that whatever error followed was the interrupt.
A second signal while the first is being handled exits at once: a run that had not committed
leaves no rows either way (DuckDB rolls it back when the file is next opened, and the next
writer marks the run failed). Once the command is done, signals are ignored: one that comes
while the process exits has nothing left to interrupt (and would otherwise kill it with
Python's default handler, restored as the interpreter shuts down).

A signal that comes once a run has begun its commit is held instead (``one_run``): the run
commits and its summary is printed, then the command stops with one line naming the run kept
(exit code 128 + signal still: the command was interrupted, though nothing was rolled back).

The main thread cannot hear a signal while it waits inside a DuckDB query that does not stop
to look (a result streamed to Arrow, as `sql` and `export` read them; a long statement, 5 times
in 6): Python runs its handlers only between bytecodes, and DuckDB, which runs them while a
query runs, at times drops what they raise, so Ctrl-C and SIGTERM did nothing until the query
ended. A watcher thread hears every signal through ``signal.set_wakeup_fd``; if the main
thread is still on the same instruction ``HEARD_S`` later (``_stuck``), it interrupts the
queries of the connections the Stores registered (``register``): the query ends with DuckDB's
``InterruptException``, the main thread comes back to Python and handles the signal. A second
signal the main thread cannot hear exits from the watcher, as the handler would. A signal
whose handler is not this module's (the consumer's, which only asks the session to stop and
write its in-flight batch) is left to that handler: interrupting the batch's write there made
a SIGTERM fail the session (CI).

Only the command line installs this (``cli.py`` does so before anything slow is imported);
the library never touches signal handlers: it only says when a run begins its commit
(``committing``) and asks what a failure stands for (``explained``), both no-ops without a
handler.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any, NoReturn

from engine.errors import Interrupted

WATCHED = (signal.SIGINT, signal.SIGTERM)
RETRY_S = 0.02  # how soon a signal that came during an import is raised again
_received: list[int] = []
# Per open ``one_run``: whether its run has begun its commit (None: it holds nothing).
_holding: list[bool | None] = []
_kept: list[str] = []  # what ``one_run`` saw committed ("run 3"), in order
_rolled_back: list[bool] = []  # whether a ``one_run``'s run was rolled back by the signal
HEARD_S = 0.1  # how long the watcher leaves the main thread to handle a signal itself
_connections: list[Any] = []  # DuckDB connections open in this process (``register``)
_wakeup: list[int] = []  # the write end of the watcher's pipe, while it watches


def install() -> None:
    """Handle SIGINT and SIGTERM as described above (main thread only). One the process was
    started ignoring (a job run in the background by a script: ``cmd &``) stays ignored, as
    Python leaves an ignored SIGINT."""
    for sig in (*WATCHED, signal.SIGALRM):
        if sig in WATCHED and signal.getsignal(sig) == signal.SIG_IGN:
            continue
        signal.signal(sig, _handle)
    if not _wakeup:
        _start_watcher()


def reclaim() -> None:
    """Take SIGINT and SIGTERM back from a library that hooked them below Python since
    ``install``; call it once the command's libraries are imported. Polars does, on import:
    a SIGINT that comes while any thread runs a Polars query then makes that query raise
    KeyboardInterrupt in its own thread (the validating one), a second exception racing this
    module's (CI once printed a traceback and two lines). Setting the handler again puts
    Python's own C handler back in front, so only the main thread hears the signal."""
    for sig in WATCHED:
        if signal.getsignal(sig) is _handle:
            signal.signal(sig, _handle)


def uninstall() -> None:
    """Python's own handling back, for a command that handles signals itself (the server)."""
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    if _wakeup:
        signal.set_wakeup_fd(-1)
        os.close(_wakeup.pop())  # the watcher reads the end of its pipe and stops


def register(con: Any) -> None:
    """A DuckDB connection whose running query a signal interrupts when the main thread
    cannot hear it (see above). Every Store registers its connections (and unregisters them
    as it closes); only the command line's watcher uses the list, and only while this
    module's handler is the one installed: a command that handles signals itself (the
    consumer, which writes its in-flight batch on the first one) is left alone."""
    _connections.append(con)


def unregister(con: Any) -> None:
    with suppress(ValueError):
        _connections.remove(con)


def _start_watcher() -> None:
    read, write = os.pipe()
    os.set_blocking(write, False)
    try:
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    except ValueError:  # not the main thread: nothing to watch for
        os.close(read)
        os.close(write)
        return
    _wakeup.append(write)
    threading.Thread(target=_watch, args=(read,), name="signal-watcher", daemon=True).start()


def _watch(fd: int) -> None:
    heard: list[int] = []
    watched = {int(sig) for sig in WATCHED}
    try:
        while data := os.read(fd, 64):
            for signum in (byte for byte in data if byte in watched):
                if signal.getsignal(signum) is not _handle:
                    continue  # handled by the command itself (a consumer writes its batch)
                heard.append(signum)
                time.sleep(HEARD_S)
                if len(heard) > 1:  # the handler exits at once if it can run: it could not
                    _exit_now(signum, heard[0])
                if _stuck() and not (_holding and _holding[-1]):
                    for con in list(_connections):
                        with suppress(Exception):
                            con.interrupt()
    except OSError:
        pass
    finally:
        os.close(fd)


def _handle(signum: int, frame: FrameType | None) -> None:
    if signum in WATCHED:
        if _received:
            _exit_now(signum, _received[0])
        _received.append(signum)
    elif not _received:  # a SIGALRM of someone else's
        return
    if _holding and _holding[-1]:  # the run is committing: raised once its summary is out
        return
    if _unsafe(frame):
        # Raised inside an import, a C extension's initialisation can abort the process
        # (nanobind does); inside __del__ it would only be printed. Try again shortly.
        signal.setitimer(signal.ITIMER_REAL, RETRY_S)
        return
    first = _received[0]
    raise Interrupted(first, signal.Signals(first).name)


def _stuck() -> bool:
    """Whether the main thread stays on one instruction for ``HEARD_S``: inside a C call (a
    DuckDB query) that the handler did not end, or could not run in. Whether the handler ran
    says nothing: DuckDB calls it while a query runs and, at times, drops what it raised and
    goes on (4 times in 6 for a long ``execute``)."""
    main = threading.main_thread().ident

    def position() -> tuple[object, int] | None:
        frame = sys._current_frames().get(main or 0)
        return None if frame is None else (frame, frame.f_lasti)

    before = position()
    time.sleep(HEARD_S)
    return before is not None and position() == before


def _exit_now(signum: int, first: int) -> NoReturn:
    name, earlier = signal.Signals(signum).name, signal.Signals(first).name
    said = f"{name} again" if name == earlier else f"{name} after {earlier}"
    os.write(2, f"error: {said}: exiting now\n".encode())
    os._exit(128 + signum)


def _unsafe(frame: FrameType | None) -> bool:
    while frame is not None:
        code = frame.f_code
        if code.co_filename.startswith("<frozen importlib") or code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


@contextmanager
def one_run(hold: bool = True) -> Iterator[Callable[[str | None], None]]:
    """Around one run of the command line and the printing of its summary. A signal that
    comes once the run has begun its commit (``committing``) is held, not raised: the run
    commits and the summary is printed whole. Call the yielded ``kept(what)`` once it is
    printed (``"run 3"``, ``"replay 2"``, ``"the prune"``): it is kept, and a held signal is
    raised there (the process's line then names it). A held signal the block ends without
    ``kept`` is raised as it ends. Other commands that change the database (``replay``,
    ``delete-run``, ``prune``) use it too, around their one transaction.
    ``hold=False``: nothing is held (a lake's run, whose commit is its publishing after)."""
    _holding.append(False if hold else None)
    done: list[bool] = []

    def kept(what: str | None) -> None:
        done.append(True)
        if what is not None:
            _kept.append(what)
        if _holding[-1]:
            _raise_held()

    try:
        yield kept
    except BaseException:
        if not done and not _holding[-1]:  # the run under way had not begun its commit
            _rolled_back.append(True)
        raise
    finally:
        held = _holding.pop()
    if held:
        _raise_held()


def committing() -> None:
    """A run is about to commit: inside ``one_run``, a signal is held from now on (one that
    came already is raised now, and the run rolls back). Elsewhere, nothing."""
    if _holding and _holding[-1] is not None:
        _raise_held()
        _holding[-1] = True


def _raise_held() -> None:
    if _received:
        raise Interrupted(_received[0], signal.Signals(_received[0]).name)


def explained(exc: BaseException) -> BaseException:
    """What ended a run: ``exc``, or the interrupt behind it. A query DuckDB was running when
    the signal came ends with DuckDB's own error (``RuntimeError: Query interrupted``), which
    says nothing of the signal, nor does the ``InterruptException`` of one the watcher ended;
    it is recorded as the interrupt, as one raised elsewhere is."""
    signum = received()
    if signum is None:
        return exc
    if (isinstance(exc, RuntimeError) and str(exc) == "Query interrupted") or type(
        exc
    ).__name__ == "InterruptException":
        return Interrupted(signum, signal.Signals(signum).name)
    return exc


def received() -> int | None:
    """The signal handled so far, if any."""
    return _received[0] if _received else None


def settle() -> int | None:
    """When the command is done: ignore SIGINT/SIGTERM from now on (a signal that comes while
    the process exits has nothing left to interrupt) and say which one came, if any."""
    while True:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
            for sig in WATCHED:
                signal.signal(sig, signal.SIG_IGN)
            return received()
        except Interrupted:  # it came just now: recorded, and handled like any other
            continue


def exit_after(command: Callable[[], object]) -> NoReturn:
    """Run ``command`` (a click entry point, which exits with its code) and exit: with its
    code, or with 128 + the signal and one line on stderr if a signal came, whatever error
    followed it. An error with no signal behind it is a bug: its traceback is kept.

    The signal's exception may come at any bytecode from the first handler set on (CI once
    had it in ``install``), including this function's own handling of the command's end; it
    comes once (a second signal exits from the handler), so catching it around everything
    up to ``settle`` covers every place."""
    code: int | str | None = 1
    try:
        code = _outcome(command)
        signum = settle()
    except Interrupted:
        signum = settle()
    if signum is not None:
        sys.stderr.write(message(signum) + "\n")
        code = 128 + signum
    sys.exit(code)


def _outcome(command: Callable[[], object]) -> int | str | None:
    """The exit code of ``command``, run with the handlers installed."""
    try:
        install()
        command()
        return 0
    except SystemExit as exc:
        return exc.code
    except BaseException:
        if received() is None:
            raise
        return 1


def message(signum: int) -> str:
    if _kept:  # the line names the last run committed, and what the signal rolled back
        rest = "the next file was not stored" if _rolled_back else "nothing was rolled back"
        return (
            f"error: interrupted by {signal.Signals(signum).name} after {_kept[-1]} was "
            f"committed (it is kept; {rest})"
        )
    return (
        f"error: interrupted by {signal.Signals(signum).name} "
        "(anything not yet committed was rolled back)"
    )
