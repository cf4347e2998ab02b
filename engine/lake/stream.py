"""Kafka micro-batches into the lake, exactly once across any number of consumers.

Each batch group the consumer's stage (a private DuckDB file) commits is published as one
lake batch (``writer``): its rows appended, then its manifest row committed with one
``Transaction(app_id, version)`` per partition: ``app_id`` names the group, topic and
partition, ``version`` is the partition's next offset after the batch. The commit goes
through only if no writer stored any offset of the batch yet (the stored version is at most
the batch's first offset of that partition). Otherwise (a replay after a crash or a
rebalance, a consumer whose session was lost meanwhile) the batch is cut down to the
offsets at or past the stored versions, appended again under a new batch number, and
committed again; the rows of the refused attempt stay orphans no reader counts. A partition
assigned to a consumer starts at the version the lake holds for it, whatever Kafka's
committed offset says.

The session's model goes through ``run --lake``'s decisions (``engine.lake.targets``,
``engine.lake.evolve``) before anything is consumed: the table its rows go to (a schema
version writes where it wrote, a new one follows the declared table's latest
``--new-table`` redirection; ``new_table`` starts one), and a refusal in one line when the
table cannot take the model. Each batch is checked again before it is appended (another
writer may have changed the table meanwhile), and the first one records the schema version
(``schema_versions``) before its manifest row, so readers see the version once a batch of
the session committed, and trace each row to it through the session's fingerprint.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from pydantic import BaseModel

from engine.errors import StoreError
from engine.lake.evolve import check_fit, duckdb_columns, record_version, version_row
from engine.lake.generations import GenerationMoved
from engine.lake.ids import new_run_id
from engine.lake.keys import Tentative, check_stored_keys, name_run
from engine.lake.location import Lake
from engine.lake.staging import Staging
from engine.lake.tables import MANIFEST, open_table
from engine.lake.targets import lake_target
from engine.lake.writer import Claim, StagedBatch, append_data, commit_batch
from engine.outcomes import Tally
from engine.store.ddl import ERROR_DETAILS, INVALID_ROWS, KAFKA_LINEAGE, SOURCE_ROWS, quote
from engine.store.runs import RunCounts
from engine.streaming.events import SessionSummary
from engine.streaming.messages import TopicPartitionKey
from engine.streaming.settings import ConsumerSettings
from engine.streaming.shutdown import StopRequest
from engine.streaming.sink import Published
from engine.streaming.topic_ids import EARLIER_TOPIC, Stored, TopicIds
from engine.validation.compiler import CompiledSchema, compile_schema

if TYPE_CHECKING:
    from engine.streaming.consumer import EventCallback
    from engine.streaming.workers import ParsedBatch


GENERATION_ATTEMPTS = 5


# A partition's key without a topic id, once a session stored the partition under its topic's
# id: what it held is in the id's key now, and a topic deleted and created again (a new id,
# no key yet) is known to be another topic by it (``engine.streaming.topic_ids``).
RETIRED = -1


def partition_app_id(group: str, key: TopicPartitionKey, topic_id: str | None = None) -> str:
    """The idempotency key of a group's position in a partition of the topic with
    ``topic_id``; without one (brokers without ids, or stored before ids were kept), of the
    topic's name."""
    topic, partition = key
    named = f"{group}\0{topic}" + ("" if topic_id is None else f"\0{topic_id}")
    digest = hashlib.sha256(named.encode()).hexdigest()[:24]
    return f"ingest-kafka-{digest}-{partition}"


def open_sink(
    lake: Lake,
    staging: Staging,
    model: type[BaseModel],
    settings: ConsumerSettings,
    *,
    new_table: bool = False,
) -> LakeSink:
    """The lake sink of a consumer session of ``model``, decided as ``run --lake`` decides a
    run: its schema aimed at the table its rows go to (``new_table``: a new one), refused
    (SchemaChangeError) when that table cannot take it, and the stage told the table."""
    schema = compile_schema(model, typed=True, context=settings.context)
    schema, following = lake_target(lake, schema, new_table=new_table)
    check_fit(lake, schema, next_table=following)
    staging.redirect(schema)
    return LakeSink(lake, staging, settings.group, schema, following)


class LakeSink:
    """Publishes one consumer session's batches from its stage into the lake (made by
    ``open_sink``: ``schema`` aimed at its table, ``following`` what ``new_table`` would
    start)."""

    def __init__(
        self, lake: Lake, staging: Staging, group: str, schema: CompiledSchema, following: str
    ) -> None:
        self.lake = lake
        self.staging = staging
        self.group = group
        self.schema = schema
        self.following = following
        self.lake_run = new_run_id()
        self.batch = 0
        self.total = Tally()
        self._run: dict[str, Any] | None = None
        self._versioned = False  # the session's schema version row is appended

    @property
    def run_id(self) -> int:
        return self.lake_run

    def positions(
        self, group: str, partitions: Iterable[TopicPartitionKey], topic_ids: TopicIds
    ) -> dict[TopicPartitionKey, Stored]:
        manifest = open_table(self.lake, MANIFEST)
        if manifest is None:
            return {}
        found = {}
        for key in partitions:
            topic_id = topic_ids.get(key[0])
            if topic_id is not None:
                version = manifest.transaction_version(partition_app_id(group, key, topic_id))
                if version is not None:
                    found[key] = Stored(int(version), topic_id)
                    continue
            named = manifest.transaction_version(partition_app_id(group, key))
            if named is None or (named == RETIRED and topic_id is None):
                continue
            found[key] = Stored(int(named), None if named != RETIRED else EARLIER_TOPIC)
        return found

    def adopt(
        self,
        run_id: int,
        group: str,
        offsets: Mapping[TopicPartitionKey, int],
        topic_ids: TopicIds,
    ) -> None:
        """Each position under its topic's id, its name's key retired, in a batch of no rows;
        one another writer already moved under the id is left to it."""
        claims = {
            partition_app_id(group, key, topic_ids[key[0]]): (key, offset)
            for key, offset in offsets.items()
        }
        while claims:
            self.batch += 1
            taken = commit_batch(
                self.lake,
                self._row(run_id, "running", self.total.counts(), "", 0, {}),
                tuple(Claim(app_id, o, o) for app_id, (_key, o) in sorted(claims.items())),
                {partition_app_id(group, key): RETIRED for key, _o in claims.values()},
            )
            for app_id in taken:
                del claims[app_id]
            if not taken:
                return

    def publish(
        self,
        run_id: int,
        batches: Sequence[ParsedBatch],
        tallies: Sequence[Tally],
        topic_ids: TopicIds,
    ) -> Published:
        first_row = batches[0].closed.first_row
        self._drop_published(run_id, first_row)
        last_row = batches[-1].closed.last_row
        lineage = pl.concat([b.validated.kafka for b in batches if b.validated.kafka is not None])
        starts = {
            (str(t), int(p)): int(o)
            for t, p, o in lineage.group_by("kafka_topic", "kafka_partition")
            .agg(pl.col("kafka_offset").min())
            .iter_rows()
        }
        nexts: dict[TopicPartitionKey, int] = {}
        for parsed in batches:
            nexts.update(parsed.offsets)
        kept = _sum(tallies)
        where = f"row_number BETWEEN {first_row} AND {last_row}"
        app_ids = {key: partition_app_id(self.group, key, topic_ids.get(key[0])) for key in nexts}
        retired = {
            partition_app_id(self.group, key): RETIRED for key in nexts if key[0] in topic_ids
        }
        keyed = bool(self.schema.unique)
        base = list(tallies)
        partial = False  # some of the rows are published by another writer
        while True:
            claims = tuple(
                Claim(app_ids[key], starts[key], nexts[key])
                for key in sorted(nexts)
                if nexts[key] > starts[key]
            )
            table_claim = None
            with Tentative(self.staging.store) as stage:  # the stage as this attempt changes it
                tallies, attempt = base, kept
                if keyed:  # the group's own duplicates name the session's lake run
                    name_run(self.staging.store, run_id, run_id, self.lake_run)
                if keyed and claims:  # keys the lake shows (another writer may be appending)
                    check = check_stored_keys(
                        self.lake,
                        self.staging.store,
                        self.schema,
                        str(self._run_row(run_id)["target_table"]),
                        run_id,
                        self.schema.table,
                        self.lake_run,
                        where,
                    )
                    table_claim = check.claim
                    claims += (check.claim,)
                    if check.moved:
                        tallies = [
                            check.moved_from(t, b.closed.first_row, b.closed.last_row)
                            for t, b in zip(base, batches, strict=True)
                        ]
                        attempt = (
                            self._recount(run_id, where, batches) if partial else _sum(tallies)
                        )
                self.batch += 1
                total = Tally()
                total.add(self.total)
                total.add(attempt)
                if attempt.rows:
                    self._append(run_id, attempt, where)
                row = self._row(run_id, "running", total.counts(), "", attempt.rows, nexts)
                taken = commit_batch(self.lake, row, claims, retired) if claims else {}
                if not taken:
                    stage.keep()
                    break
            lost = table_claim is not None and taken.pop(table_claim.app_id, None) is not None
            if lost and not taken:
                continue  # another keyed writer of the table came first: check again
            # Some of these offsets are in the lake already: keep only what is not.
            by_app = {app_id: key for key, app_id in app_ids.items()}
            for app_id, stored in taken.items():
                starts[by_app[app_id]] = max(starts[by_app[app_id]], stored)
            where = self._after(run_id, first_row, last_row, starts)
            kept, partial = self._recount(run_id, where, batches), True
        self.total = total
        if attempt.rows == sum(t.rows for t in tallies):
            return Published(list(tallies))
        # Each batch's own kept rows (the group's would all be reported by its first line).
        return Published(
            [
                self._recount(
                    run_id,
                    f"({where}) AND row_number BETWEEN {b.closed.first_row} AND {b.closed.last_row}",
                    [b],
                )
                for b in batches
            ],
            where,
        )

    def finish(self, run_id: int, status: str, counts: RunCounts, message: str) -> None:
        self.batch += 1
        commit_batch(self.lake, self._row(run_id, status, self.total.counts(), message, 0, {}))

    # -- helpers -------------------------------------------------------------------------

    def _append(self, run_id: int, kept: Tally, where: str) -> None:
        """Append the batch's rows, its typed rows to the generation of the table that holds
        their types (``engine.lake.generations``), decided again if another writer started
        that generation with other types meanwhile; the first batch also records the
        session's schema version. The model is checked against the table again first, as
        ``run --lake`` checks at publish: another writer may have changed it meanwhile."""
        table = str(self._run_row(run_id)["target_table"])
        with self.staging.store.lock:
            shape = self.staging.store.con.sql(
                f"SELECT * EXCLUDE (run_id) FROM {quote(table)} LIMIT 0"
            ).to_arrow_table()
        wanted = duckdb_columns(shape.schema)
        for _attempt in range(GENERATION_ATTEMPTS):
            fit = check_fit(self.lake, self.schema, wanted, next_table=self.following)
            existed = open_table(self.lake, table) is not None
            staged = self._staged(run_id, kept, where, fit.generation)
            try:
                append_data(self.lake, self.staging.store, staged)
            except GenerationMoved as moved:
                problem = moved
                continue
            if not self._versioned:
                row = version_row(
                    self.lake,
                    self.schema,
                    fit.plan,
                    existed=existed,
                    run_id=self.lake_run,
                    batch=self.batch,
                )
                record_version(self.lake, row)
                self._versioned = True
            return
        raise StoreError(
            self.lake.uri,
            f"table {table!r} of the lake cannot take the batch's rows: {problem} has other "
            "types in the columns they share",
            hint="other writers started generations of the table with other models "
            f"{GENERATION_ATTEMPTS} times meanwhile; start the consumer again (the batch is "
            "fetched again)",
        )

    def _staged(self, run_id: int, kept: Tally, where: str, generation: str) -> StagedBatch:
        run = self._run_row(run_id)
        return StagedBatch(
            run_id,
            self.lake_run,
            self.batch,
            str(run["target_table"]),
            kept.rows,
            kept.valid,
            kept.invalid,
            kafka=True,
            where=where,
            lake_table=generation,
        )

    def _run_row(self, run_id: int) -> dict[str, Any]:
        if self._run is None:
            self._run = self.staging.run_row(run_id)
        return self._run

    def _row(
        self,
        run_id: int,
        status: str,
        counts: RunCounts,
        message: str,
        rows: int,
        nexts: dict[TopicPartitionKey, int],
    ) -> dict[str, Any]:
        run = self._run_row(run_id)
        now = datetime.now(UTC)
        return {
            **run,
            "run_id": self.lake_run,
            "batch": self.batch,
            "status": status,
            "rows_total": counts.rows_total,
            "rows_valid": counts.rows_valid,
            "rows_invalid": counts.rows_invalid,
            "rows_python": counts.rows_python,
            "blank_lines": 0,
            "finished_at": now,
            "duration_s": (now - run["started_at"]).total_seconds(),
            "message": message[:2000] or None,
            "batch_rows": rows,
            "committed_at": now,
            "group_id": self.group,
            "offsets": [
                {"topic": t, "partition": p, "next_offset": o}
                for (t, p), o in sorted(nexts.items())
            ]
            or None,
        }

    def _after(
        self,
        run_id: int,
        first_row: int,
        last_row: int,
        starts: dict[TopicPartitionKey, int],
    ) -> str:
        """The staged rows of the batch whose offsets no writer stored yet."""
        cases = " OR ".join(
            f"(kafka_topic = '{t.replace(chr(39), chr(39) * 2)}' AND kafka_partition = {int(p)} "
            f"AND kafka_offset >= {int(o)})"
            for (t, p), o in sorted(starts.items())
        )
        return (
            f"row_number IN (SELECT row_number FROM {KAFKA_LINEAGE} WHERE run_id = {int(run_id)} "
            f"AND row_number BETWEEN {first_row} AND {last_row} AND ({cases or 'FALSE'}))"
        )

    def _recount(self, run_id: int, where: str, batches: Sequence[ParsedBatch]) -> Tally:
        """The figures of the staged rows ``where`` says, of ``batches``: the rows Pydantic
        decided are known from the batches, the errors from the staged error lists."""
        table = quote(str(self._run_row(run_id)["target_table"]))
        store = self.staging.store
        rows, valid, invalid = store.rows(
            f"SELECT (SELECT count(*) FROM {SOURCE_ROWS} WHERE run_id = ? AND {where}), "
            f"(SELECT count(*) FROM {table} WHERE run_id = ? AND {where}), "
            f"(SELECT count(*) FROM {INVALID_ROWS} WHERE run_id = ? AND {where})",
            [run_id, run_id, run_id],
        )[0]
        errors = Counter(
            {
                (str(loc or ""), str(kind)): int(n)
                for loc, kind, n in store.rows(
                    f"SELECT loc, type, count(*) FROM {ERROR_DETAILS} WHERE run_id = ? "
                    f"AND {where} GROUP BY ALL",
                    [run_id],
                )
            }
        )
        python = pl.concat([b.validated.python_rows for b in batches])
        if python.len():
            kept = store.frame(
                f"SELECT row_number FROM {SOURCE_ROWS} WHERE run_id = {int(run_id)} AND {where}"
            ).get_column("row_number")
            python = python.filter(python.is_in(kept.implode()))
        return Tally(int(rows), int(valid), int(invalid), python.len(), errors)

    def _drop_published(self, run_id: int, below: int) -> None:
        """Keep the stage small: rows of earlier batches are published, no longer needed."""
        run = self._run_row(run_id)
        for table in (SOURCE_ROWS, KAFKA_LINEAGE, INVALID_ROWS, str(run["target_table"])):
            self.staging.store.execute(
                f"DELETE FROM {quote(table)} WHERE run_id = ? AND row_number < ?", [run_id, below]
            )


def _sum(tallies: Sequence[Tally]) -> Tally:
    total = Tally()
    for tally in tallies:
        total.add(tally)
    return total


def consume_into_lake(
    lake: Lake,
    model: type[BaseModel],
    settings: ConsumerSettings,
    *,
    on_event: EventCallback | None = None,
    stop: StopRequest | None = None,
    staging_dir: Path | None = None,
    new_table: bool = False,
) -> SessionSummary:
    """One consumer session whose batches go through a private stage into the lake
    (``new_table``: into a new table, as ``run --new-table``)."""
    from engine.streaming.consumer import consume

    with Staging(lake, staging_dir) as staging:
        sink = open_sink(lake, staging, model, settings, new_table=new_table)
        summary = consume(staging.store, model, settings, on_event=on_event, stop=stop, sink=sink)
    return dataclasses.replace(summary, run_id=sink.lake_run)
