"""Database-wide DuckDB settings that a session changes while it runs.

A file run lowers DuckDB's threads and cache while it appends; a Kafka consumer sets its
threads and checkpoint threshold. In the API server both can run at once, on connections to
the same database, and end in any order. Each setting takes the value of the latest session
still running that sets it, and the value it had before the first one when none is left.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.store.store import Store


class Overrides:
    """Shared by a Store and its cursors (the settings are the database's, not a connection's)."""

    def __init__(self, before: Mapping[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._before = dict(before or {})
        self._active: list[dict[str, str]] = []

    @contextmanager
    def applied(self, store: Store, settings: Mapping[str, str]) -> Iterator[None]:
        mine = dict(settings)
        with self._lock:
            for name in mine:
                if name not in self._before:
                    self._before[name] = str(store.rows("SELECT current_setting(?)", [name])[0][0])
            self._active.append(mine)
            try:
                self._apply(store, mine)
            except BaseException:
                self._forget(mine)
                self._apply(store, mine)
                raise
        try:
            yield
        finally:
            with self._lock:
                self._forget(mine)
                self._apply(store, mine)

    def value(self, name: str) -> str | None:
        """What ``name`` is set to now as these overrides see it (the latest session's value,
        else the one from before them; None if they never touched it). Read without their
        lock, by a holder of a store's lock (``long_values``)."""
        for active in reversed(list(self._active)):
            if name in active:
                return active[name]
        return self._before.get(name)

    def _forget(self, settings: dict[str, str]) -> None:
        self._active = [active for active in self._active if active is not settings]

    def _apply(self, store: Store, names: Mapping[str, str]) -> None:
        for name in names:
            value = next(
                (active[name] for active in reversed(self._active) if name in active),
                self._before[name],
            )
            store.execute(f"SET {name} = '{value.replace(chr(39), chr(39) * 2)}'")
