"""`lake compact` and `lake vacuum`: housekeeping of a lake's Delta tables, safe while
writers run."""

from __future__ import annotations

import re
from datetime import timedelta

import click

from engine import interrupts, ui
from engine.cli.options import handle_errors, lake_from
from engine.errors import ConfigError
from engine.wording import count

DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``7d``, ``24h``, ``90m``, ``2w``, ``0s``."""
    found = DURATION.match(text)
    if not found:
        raise ConfigError(
            f"--older-than expects a number and a unit (s, m, h, d or w), e.g. 7d or 24h; got {text!r}"
        )
    try:
        return timedelta(seconds=int(found[1]) * UNITS[found[2]])
    except OverflowError:
        raise ConfigError(
            f"--older-than {text.strip()} is too long (at most {timedelta.max.days:,} days)"
        ) from None


@click.group()
def lake() -> None:
    """Housekeeping of a --lake's Delta tables (safe while writers run)."""


def _lake_uri(ctx: click.Context, _param: click.Parameter, value: str) -> str:
    # An empty URI (``lake compact "$UNSET"``) would be no lake at all: one line, as for an
    # empty --lake, not a traceback.
    if not value.strip():
        ui.fail("URI is empty: give the lake's directory or s3://bucket/prefix")
        ctx.exit(2)
    return value


LAKE_ARGUMENT = click.argument("uri", metavar="URI", callback=_lake_uri)


@lake.command()
@LAKE_ARGUMENT
@handle_errors
def compact(uri: str) -> None:
    """Rewrite each table's small files (micro-batches make many) into large ones."""
    from engine.lake.housekeeping import compact as compact_lake

    interrupts.reclaim()  # from Polars, imported just now

    target = lake_from(uri)
    assert target is not None  # the URI is not empty (``_lake_uri``)
    for work in compact_lake(target):
        if work.problem:
            click.echo(f"{work.table}: not compacted: {work.problem}")
        else:
            click.echo(
                f"{work.table}: {count(work.files_removed, 'file')} rewritten into "
                f"{count(work.files_added, 'file')}"
            )


@lake.command()
@LAKE_ARGUMENT
@click.option(
    "--older-than",
    default="7d",
    show_default=True,
    metavar="DURATION",
    help=(
        "Delete files no table version younger than this needs (7d, 24h, 90m, 0s; "
        "rounded up to whole hours)."
    ),
)
@click.option("--dry-run", is_flag=True, help="List what would be deleted, delete nothing.")
@handle_errors
def vacuum(uri: str, older_than: str, dry_run: bool) -> None:
    """Delete files that compaction replaced (and orphans) once older than --older-than."""
    from engine.lake.housekeeping import vacuum as vacuum_lake

    interrupts.reclaim()  # from Polars, imported just now

    target = lake_from(uri)
    assert target is not None  # the URI is not empty (``_lake_uri``)
    retention = parse_duration(older_than)
    for table, files in vacuum_lake(target, older_than=retention, dry_run=dry_run).items():
        verb = "would delete" if dry_run else "deleted"
        click.echo(f"{table}: {verb} {count(len(files), 'file')}")
