"""The lake: the engine's tables as Delta Lake tables under one root (a directory or an
``s3://bucket/prefix``), written by any number of processes at once.

A run is validated and stored exactly as into a DuckDB file, into a private staging DuckDB
file (``staging``); once its rows are committed there, they are published (``writer``):
the data tables are appended first, then one row per batch in the ``ingestion_batches``
manifest, whose commit carries Delta's idempotent-write record. Readers (``reader``) see a
batch only through the manifest, so never half of one.
"""

from engine.lake.location import Lake

__all__ = ["Lake"]
