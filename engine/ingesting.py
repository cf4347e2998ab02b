"""``engine.ingest``: one call for a run, from wherever the data lives, into a store.

Whatever the source (a path, ``-`` for stdin, an ``http(s)://`` or ``s3://`` URL, a file
object, a DataFrame, an iterable of dicts), the run is the one the CLI's ``run`` and the
API's ``POST /ingest`` make: they call this.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from engine.errors import ConfigError, SourceError, StoreError
from engine.gate import QualityGate
from engine.lake.location import Lake
from engine.pipeline import (
    MiB,
    ProgressCallback,
    RunOptions,
    RunSummary,
    ingest_file,
    ingest_rows,
)
from engine.schemas import load_schema
from engine.sources.dialect import CsvDialect
from engine.sources.frames import is_frame
from engine.sources.inputs import Input, open_input, open_stdin, open_stream
from engine.sources.remote import RemoteSettings, is_remote, open_remote
from engine.store import raw_codec
from engine.store.disk_full import giving_back_space
from engine.store.modes import MODES, LoadMode, check_mode
from engine.store.runs import mark_interrupted
from engine.store.store import Store

STDIN = "-"


def ingest(
    source: Any,
    *,
    db: str | os.PathLike[str] | Store | Lake,
    schema: type[BaseModel] | str,
    format: str | None = None,
    force: bool = False,
    context: Mapping[str, Any] | None = None,
    delimiter: str = ",",
    quote_char: str = '"',
    encoding: str = "utf-8",
    max_invalid: int | None = None,
    max_invalid_rate: float | None = None,
    name: str | None = None,
    progress: ProgressCallback | None = None,
    remote: RemoteSettings | None = None,
    block_size: int = 16 * MiB,
    max_record_bytes: int = 16 * MiB,
    storing_first: bool = False,
    mode: str = "append",
    new_table: bool = False,
    raw_compression: str | None = None,
) -> RunSummary:
    """Validate ``source`` against ``schema`` and store it in ``db`` as one atomic run.

    ``source``: a path (``str`` or ``Path``), ``"-"`` (stdin), an ``http(s)://`` or ``s3://``
    URL, a binary or text file object, an ``Input`` (``engine.sources.inputs``: opened and
    checked by the caller, read as it is), a Polars or pandas DataFrame, an Arrow table or record
    batch, or an iterable of dicts. Files may be compressed (gzip, zstd, bz2, xz).
    ``db``: a DuckDB file (created if missing), a :class:`Store` already open for writing, or
    a :class:`Lake` (Delta tables under a directory or ``s3://`` prefix, shared by writers).
    ``schema``: a Pydantic model, or a name (``transactions``, ``package.module:Class``,
    ``path/to/file.py:Class``). ``format``: ``csv``, ``ndjson``, ``json``, ``parquet`` or
    ``arrow`` (by default from the name or the first bytes). ``force``: ingest content already
    ingested with the same schema again (else it is ``skipped``). ``delimiter``,
    ``quote_char``, ``encoding``: the CSV dialect. ``max_invalid``, ``max_invalid_rate``: the
    quality gate (a run over it is stored, and its summary's ``gate`` says why).
    ``max_record_bytes``: the longest record read (16 MiB; a longer one, or a quote or
    bracket left open past it, stops the run with one line naming it). ``name``: what the
    run calls its source (default: the path, the URL, ``stdin``). ``remote``: where
    to reach S3 (see ``RemoteSettings.from_environment``). ``storing_first``: the process
    does nothing but this run, so its other threads yield to the one storing rows.
    ``mode``: ``append``, ``replace`` (the table holds this run's valid rows only) or
    ``merge`` (upsert on the model's ``__unique__`` key). ``new_table``: store the model's
    rows in a new table, for a model its stored table cannot take (see schema evolution).
    ``raw_compression``: how a new database compresses the raw text (``uncompressed``,
    ``zstd``, ``auto``); an existing one must already use it. A Lake takes every mode,
    schema evolution and ``new_table``, but not ``raw_compression`` (one-line refusal).
    """
    model = load_schema(schema) if isinstance(schema, str) else schema
    if context is not None and not isinstance(context, Mapping):
        raise ConfigError(
            f"context must be a mapping of names to values (a dict), not a {type(context).__name__}"
        )
    options = RunOptions(
        fmt=format,
        force=force,
        context=dict(context or {}),
        block_size=block_size,
        max_record_bytes=_positive(max_record_bytes, "max_record_bytes"),
        storing_first=storing_first,
        source_name=name,
        dialect=CsvDialect(delimiter, quote_char, encoding),
        gate=_gate(max_invalid, max_invalid_rate),
        mode=_mode(mode),
        new_table=new_table,
    )
    if raw_compression is not None:
        raw_codec.check(raw_compression)
    located = isinstance(source, str | os.PathLike)
    given = isinstance(source, Input)
    streamed = not (located or given) and hasattr(source, "read")
    if not (located or streamed or given) and (
        isinstance(source, bytes | Mapping) or not (is_frame(source) or _iterable(source))
    ):
        raise ConfigError(
            f"cannot ingest a {type(source).__name__}: give a path, a URL, '-', a file "
            "object, a DataFrame, an Arrow table or an iterable of dicts"
        )

    def run(store: Store) -> RunSummary:
        if given:  # by the caller (the API's checked file_path), read as it is
            return ingest_file(store, source, model, options, progress)
        if located:
            with _open(source, name, remote or RemoteSettings()) as opened:
                return ingest_file(store, opened, model, options, progress)
        if streamed:
            label = name or str(getattr(source, "name", "stream"))
            return ingest_file(store, open_stream(source, label), model, options, progress)
        kind = "frame" if is_frame(source) else "rows"
        return ingest_rows(
            store, source, model, options, progress, name=name or f"python:{kind}", fmt=kind
        )

    if isinstance(db, Lake):
        _lake_can_take(raw_compression)
        # Staged through the same path into a private DuckDB file, then published.
        from engine.lake.runs import ingest_into_lake  # deltalake: loaded only for a lake
        from engine.validation.compiler import compile_schema, fingerprint

        compiled = compile_schema(model, typed=True, context=options.context)
        check_mode(options.mode, compiled.unique, compiled.name)
        new_table = options.new_table
        # The lake picks the table (a new one too) and the staging file is told it.
        options = dataclasses.replace(options, new_table=False)
        return ingest_into_lake(
            db,
            run,
            fingerprint=fingerprint(model, options.context),
            force=force,
            schema=compiled,
            mode=options.mode,
            new_table=new_table,
            gate=options.gate,
        )
    with _target(db, raw_compression) as store:
        return run(store)


def _lake_can_take(raw_compression: str | None) -> None:
    """What a lake does not do yet: said before anything is read."""
    if raw_compression:
        raise ConfigError(
            "a lake does not take raw_compression (Parquet compresses the raw text itself) "
            "yet (use a DuckDB file for it)"
        )


def _gate(max_invalid: int | None, max_invalid_rate: float | None) -> QualityGate | None:
    if max_invalid is None and max_invalid_rate is None:
        return None
    return QualityGate(max_invalid, max_invalid_rate)


def _positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive number of bytes, got {value!r}")
    return value


def _mode(mode: str) -> LoadMode:
    if mode not in MODES:
        raise ConfigError(f"unknown load mode {mode!r} (use append, replace or merge)")
    return mode  # type: ignore[return-value]


def _iterable(source: Any) -> bool:
    try:
        iter(source)
    except TypeError:
        return False
    return True


def _open(location: str | os.PathLike[str], name: str | None, remote: RemoteSettings) -> Input:
    text = os.fspath(location)
    if text == STDIN:
        if sys.stdin is None:  # started with stdin closed (<&-)
            raise SourceError("stdin", "stdin is closed: there is nothing to read")
        opened = open_stdin(sys.stdin.buffer)
        if name:
            opened.name = opened.recorded_as = name
        return opened
    if is_remote(text):
        opened = open_remote(text, remote)
        if name:
            opened.name = opened.recorded_as = name
        return opened
    return open_input(Path(text), name=name)


@contextmanager
def _target(db: str | os.PathLike[str] | Store, raw_compression: str | None) -> Iterator[Store]:
    """Where a run is stored: a DuckDB file, opened here (and its runs left 'running' by a
    process that died marked so), or a Store the caller holds open. The one place a run's
    destination is chosen: another kind of store (a lake) plugs in here."""
    if isinstance(db, Store):
        found = raw_codec.stored_codec(db.con)
        if raw_compression is not None and raw_compression != found:
            raise StoreError(
                db.path,
                f"the database stores raw text {found}, not {raw_compression}",
                hint="rewrite it with engine.compact(path, raw_compression=...), or leave "
                "out raw_compression",
            )
        yield db
        return
    with giving_back_space(Path(db)), Store(Path(db), raw_compression=raw_compression) as store:
        with store.writing():
            mark_interrupted(store)
        yield store
