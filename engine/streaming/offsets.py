"""Each partition's next offset, kept in DuckDB next to the rows it accounts for.

``save_offsets`` runs inside a micro-batch's transaction, so the rows and the position after
them commit together: after any crash, the stored offset says exactly which messages are in
the file. Kafka's own committed offset is only a copy for lag tooling and for the consumers of
the group that write other files. Each offset keeps the id of the topic it is in
(``engine.streaming.topic_ids``), so that a topic deleted and created again is recognised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from engine.store.ddl import OFFSETS
from engine.store.store import Store
from engine.streaming.events import StartFrom
from engine.streaming.messages import TopicPartitionKey
from engine.streaming.sink import Sink
from engine.streaming.topic_ids import Stored, TopicIds


def load_offsets(
    store: Store, group: str, partitions: Iterable[TopicPartitionKey]
) -> dict[TopicPartitionKey, Stored]:
    """The stored next offset of each of ``partitions`` that has one, with its topic's id."""
    wanted = set(partitions)
    rows = store.rows(
        f'SELECT topic, "partition", next_offset, topic_id FROM {OFFSETS} WHERE group_id = ?',
        [group],
    )
    return {(t, p): Stored(int(o), i) for t, p, o, i in rows if (t, p) in wanted}


def stored_positions(
    store: Store,
    sink: Sink | None,
    run_id: int,
    group: str,
    partitions: list[TopicPartitionKey],
    topic_ids: TopicIds,
) -> tuple[dict[TopicPartitionKey, Stored], StartFrom]:
    """Where each of ``partitions`` resumes, as the sink (a lake) or else this file holds it.

    An offset kept without a topic id (stored before ids were, or by brokers without them) is
    resumed from as the topic's; its topic's id is recorded with it now, not at the
    partition's next batch: a partition that got no message before its topic was deleted and
    created again was otherwise read from the old offset, skipping the new topic's first
    messages (an independent attack)."""
    origin: StartFrom = "duckdb" if sink is None else "lake"
    if sink is not None:
        stored = sink.positions(group, partitions, topic_ids)
    else:
        stored = load_offsets(store, group, partitions)
    unkeyed = {k: s.offset for k, s in stored.items() if s.topic_id is None and k[0] in topic_ids}
    if unkeyed and sink is not None:
        sink.adopt(run_id, group, unkeyed, topic_ids)
    elif unkeyed:
        _record_ids(store, group, unkeyed, topic_ids)
    return stored, origin


def _record_ids(
    store: Store, group: str, partitions: Iterable[TopicPartitionKey], topic_ids: TopicIds
) -> None:
    """The topics' ids for those of ``partitions`` whose offset has none."""
    rows = [(topic, partition, topic_ids[topic]) for topic, partition in sorted(partitions)]
    values = ", ".join("(?, ?, ?)" for _ in rows)
    with store.writing():
        store.execute(
            f"UPDATE {OFFSETS} AS s SET topic_id = v.topic_id "
            f'FROM (VALUES {values}) AS v(topic, "partition", topic_id) WHERE '
            's.group_id = ? AND s.topic = v.topic AND s."partition" = v."partition" '
            "AND s.topic_id IS NULL",
            [*(value for row in rows for value in row), group],
        )


def save_offsets(
    store: Store,
    group: str,
    offsets: Mapping[TopicPartitionKey, int],
    run_id: int,
    topic_ids: TopicIds,
) -> None:
    """Store the next offsets and their topics' ids (call inside the batch's transaction); an
    offset whose topic's id this session does not know keeps the one stored.

    Past a partition's first batch its row exists: one UPDATE moves them all, at half the
    cost of DuckDB's upsert (which a micro-batch pays on every commit). Only when a partition
    has no row yet does the upsert run.
    """
    if not offsets:
        return
    now = datetime.now(UTC)
    rows = sorted(offsets.items())
    values = ", ".join("(?, ?, ?, ?::VARCHAR)" for _ in rows)
    moved: list[object] = [run_id, now]
    for (topic, partition), offset in rows:
        moved += [topic, partition, offset, topic_ids.get(topic)]
    updated = store.rows(
        f"UPDATE {OFFSETS} AS s SET next_offset = v.next_offset, "
        "topic_id = coalesce(v.topic_id, s.topic_id), "
        "run_id = ?, updated_at = ? "
        f'FROM (VALUES {values}) AS v(topic, "partition", next_offset, topic_id) '
        'WHERE s.group_id = ? AND s.topic = v.topic AND s."partition" = v."partition"',
        [*moved, group],
    )
    if updated and updated[0][0] == len(rows):
        return
    values = ", ".join("(?, ?, ?, ?, ?, ?, ?::VARCHAR)" for _ in rows)
    parameters: list[object] = []
    for (topic, partition), offset in rows:
        parameters += [group, topic, partition, offset, run_id, now, topic_ids.get(topic)]
    store.execute(
        f'INSERT INTO {OFFSETS} (group_id, topic, "partition", next_offset, run_id, updated_at, '
        f'topic_id) VALUES {values} ON CONFLICT (group_id, topic, "partition") DO UPDATE SET '
        "next_offset = excluded.next_offset, run_id = excluded.run_id, "
        "updated_at = excluded.updated_at, "
        f"topic_id = coalesce(excluded.topic_id, {OFFSETS}.topic_id)",
        parameters,
    )
