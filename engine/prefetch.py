"""Run a producer in a background thread, a few items ahead of the consumer.

Reading and splitting a batch, validating the previous one (Polars, NumPy) and appending the
one before to DuckDB mostly release the GIL, so a file run chains two prefetches and the
three overlap. The queue is bounded, so memory stays bounded; if the consumer stops early
the producer is told to stop too.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from engine.errors import Interrupted

T = TypeVar("T")


@dataclass(frozen=True)
class _Failure:
    error: BaseException


_DONE = object()


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    pending: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(_Failure(exc))

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    wait = 30.0  # for the producer to stop after the last item or a failure of its own
    try:
        while True:
            try:
                # In short waits: a signal the kernel hands to another thread reaches the
                # main thread's handler only when it wakes (a producer stalled on a slow
                # FIFO kept Ctrl-C waiting for as long as the writer liked).
                item = pending.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    except GeneratorExit:
        # Closed by the consumer's unwinding or the garbage collector: a signal's exception
        # raised while this cleans up could only be printed ("Exception ignored in ..."),
        # the consumer has its own (the command line knows which signal came: interrupts).
        wait = 0.0
        with contextlib.suppress(Interrupted):
            stop.set()
            worker.join(timeout=1.0)
        raise
    except BaseException:
        wait = 1.0  # the consumer's own error or a signal: a producer blocked on its input
        raise  # (a stalled writer) is not waited for; it is a daemon
    finally:
        if wait:  # not cleaned up above
            stop.set()
            worker.join(timeout=wait)
