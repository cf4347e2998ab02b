"""Which partitions a consumer session owns, where each started, and how far it stored.

Owned partitions change in the rebalance callbacks; messages fetched before a rebalance and
handed over after it are filtered against them (``accepts``): only owned partitions, never
an offset below the partition's assigned start. ``stored`` is the next offset the store
holds for each owned partition (what lag is counted from, and what a revoke commits to
Kafka).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from engine.streaming.messages import TopicPartitionKey

# A partition's high watermark (None when unknown).
Watermark = Callable[[TopicPartitionKey], int | None]


class Partitions:
    def __init__(self) -> None:
        self._owned: set[TopicPartitionKey] = set()
        self._starts: dict[TopicPartitionKey, int] = {}  # assigned start, for the stale filter
        self._stored: dict[TopicPartitionKey, int] = {}  # next offset held by the store

    def assign(self, key: TopicPartitionKey, start: int | None) -> None:
        """Own ``key``, from ``start`` (None: ``auto.offset.reset`` decides)."""
        self._owned.add(key)
        if start is not None:
            self._starts[key] = start
            self._stored[key] = start

    def forget(self, keys: Iterable[TopicPartitionKey]) -> None:
        for key in keys:
            self._owned.discard(key)
            self._starts.pop(key, None)
            self._stored.pop(key, None)

    def owns(self, key: TopicPartitionKey) -> bool:
        return key in self._owned

    def accepts(self, key: TopicPartitionKey, offset: int) -> bool:
        """Whether a message fetched around a rebalance is still ours (and not seen before)."""
        if key not in self._owned or offset < self._starts.get(key, -1):
            return False
        self._starts[key] = offset + 1
        return True

    def stored_now(self, offsets: Mapping[TopicPartitionKey, int]) -> dict[TopicPartitionKey, int]:
        """Record a written batch's next offsets; returns those of partitions still owned (a
        batch closed before its partitions were lost must not move the group's offsets)."""
        owned = {key: offset for key, offset in offsets.items() if key in self._owned}
        self._stored.update(owned)
        return owned

    def stored_of(self, keys: Iterable[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        return {key: self._stored[key] for key in keys if key in self._stored}

    def lag(self, watermark: Watermark) -> int | None:
        """Messages between what the store holds and the partitions' high watermarks."""
        total: int | None = None
        for key in sorted(self._owned):
            position = self._stored.get(key)
            if position is None:
                continue
            high = watermark(key)
            if high is not None and high >= 0:
                total = (total or 0) + max(0, high - position)
        return total
