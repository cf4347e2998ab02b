"""Which table of a lake a schema's rows go to, and ``--new-table``, as on a DuckDB file.

A schema version writes where it wrote before; a new version of a model goes to its
declared table (``__table_name__``) or that table's latest redirection; ``new_table``
starts ``<declared>_v<N>`` (N: the declared table's versions so far plus one, at least 2,
past any table of that name), and later runs of the model, and new versions of it, follow
it there (``engine.store.versions``). A name is the table the lake spells it, ignoring case
(``engine.lake.names``). The lake decides from the versions its committed runs
used (a version row whose run never committed redirects nothing), and the run's staging
file is told the table (``Staging.redirect``), so the pipeline stores into it.
"""

from __future__ import annotations

import dataclasses

from engine.lake.datasets import query
from engine.lake.evolve import ENGINE_COLUMNS
from engine.lake.location import Lake
from engine.lake.names import check_table_name, lake_spelling
from engine.lake.tables import MANIFEST, VERSIONS, open_table
from engine.lake.writer import Claim
from engine.store.versions import refuse_case_clashes
from engine.validation.compiler import CompiledSchema
from engine.validation.storage_options import table_name


def committed_versions(lake: Lake, declared: str) -> list[tuple[str, str]]:
    """(fingerprint, target table) of each version of the declared table a committed run
    (or replay) used, oldest first."""
    manifest, versions = open_table(lake, MANIFEST), open_table(lake, VERSIONS)
    if manifest is None or versions is None:
        return []
    rows = query(
        lake,
        {"manifest": (MANIFEST, manifest), "versions": (VERSIONS, versions)},
        "SELECT schema_fingerprint, target_table FROM versions SEMI JOIN (SELECT DISTINCT "
        "schema_fingerprint, target_table FROM manifest WHERE status <> 'failed') "
        "USING (schema_fingerprint, target_table) WHERE lower(declared_table) = lower(?) "
        "GROUP BY ALL ORDER BY min(created_at)",
        [declared],
    )
    return [(str(f), str(t)) for f, t in rows]


def next_table(lake: Lake, declared: str, versions: int | None = None) -> str:
    """What ``--new-table`` would start for the declared table."""
    if versions is None:
        versions = len(committed_versions(lake, declared))
    n = max(2, versions + 1)
    while open_table(lake, f"{declared}_v{n}") is not None:
        n += 1
    return f"{declared}_v{n}"


def lake_target(
    lake: Lake, schema: CompiledSchema, *, new_table: bool = False
) -> tuple[CompiledSchema, str]:
    """The schema aimed at the table its rows go to, and what ``--new-table`` would start;
    a StoreError when the lake cannot hold the model's table (``engine.lake.names``)."""
    declared = table_name(schema.model)
    check_table_name(lake, schema.name, declared)
    declared = lake_spelling(lake, declared)
    refuse_case_clashes(lake.uri, schema, declared, ENGINE_COLUMNS, ENGINE_COLUMNS)
    found = committed_versions(lake, declared)
    own = [t for f, t in found if f == schema.fingerprint]
    following = next_table(lake, declared, len(found))
    latest = own[-1] if own else found[-1][1] if found else declared
    table = following if new_table else latest
    return dataclasses.replace(schema, table=table), following


def new_table_claim(table: str) -> Claim:
    """The claim a ``new_table`` run's manifest commit makes on the table it starts: of two
    runs that chose the same one at once, the second to commit finds it taken and decides
    again (``engine.lake.runs``)."""
    return Claim(f"lake-new-table-{table}", 0, 1)
