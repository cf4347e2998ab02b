"""How large a file run's next blocks may be, given the errors of its last batch.

A batch's error lists cost memory by the error, not by the byte: validating builds each
error's input, code and text, and the allocator keeps that memory for reuse. A 1M-row CSV whose
every row fails on four fields (64 MB: 262,000 rows and a million errors in a 16 MiB block)
peaked at 1.10 GB, where generated data with a third of its rows invalid (about 60,000
errors a block) peaks at 0.8 GB. So after each batch the reader is held to blocks that would
hold about ``ERRORS_PER_BLOCK`` errors at that batch's density, never smaller than
``MIN_BLOCK`` nor larger than the run's block size: that file reads 3.8 MiB blocks and peaks
at 0.8 GB, 10% slower (500,000 errors cost no time but peaked at 0.99 GB), and generated data
keeps its 16 MiB blocks. Rows of a few bytes with an error in each field (``,-,X,,x``: 5
errors in 8 bytes, 655,000 in 1 MiB) peaked at 0.94-0.97 GB with 1 MiB as the smallest block
and 0.87-0.88 GB with 256 KiB, 7% slower on that file.

Errors also cost memory by their inputs: a missing field's input is the whole row as JSON,
the names of extra columns included, so a header of long names made 20 KB of inputs a row
(an independent attack: 1.1 GB from a 1 MB file, 7.9 GB from 32 MB). The blocks are held to
about ``INPUT_BYTES_PER_BLOCK`` of inputs too, and may shrink to ``MIN_BLOCK`` (64 KiB) for
them; the first block is small for the same reason (``engine.sources.inputs``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.sources.records import MAX_RECORDS

if TYPE_CHECKING:
    from engine.pipeline import Validated

ERRORS_PER_BLOCK = 250_000
INPUT_BYTES_PER_BLOCK = 32 << 20
MIN_BLOCK = 1 << 16
ERRORS_PER_BATCH = 1_000_000  # the most a batch can make, one error a field and a row
SMALLEST_BATCH = 1 << 14


def block_for(validated: Validated, block_size: int) -> int:
    """The largest block the next batches should come from."""
    errors = sum(validated.tally.errors.values())
    if not errors:
        return block_size
    lines = validated.lineage
    size = int(lines["raw"].str.len_bytes().sum() or 0) + lines.height  # and their newlines
    inputs = int(validated.invalid.get_column("inputs").explode().str.len_bytes().sum() or 0)
    by_inputs = INPUT_BYTES_PER_BLOCK * size // inputs if inputs else block_size
    return max(MIN_BLOCK, min(block_size, ERRORS_PER_BLOCK * size // errors, by_inputs))


def records_for(fields: int) -> int:
    """The most records a batch of a model with ``fields`` fields may hold.

    The budget comes after a batch; a block read before it, after a clean stretch, may be all
    errors: 600,000 valid rows then 2M rows of ``,-,X,,x`` peaked at 1.5 GB (an independent
    attack), each 16 MiB block making 2M rows and 10M errors. A row has about one error a
    field at most (and one for each extra key), so batches of ``ERRORS_PER_BATCH`` over the
    fields (and one) rows bound them: 166,666 rows for five fields, and that file 0.89 GB.
    Generated data then takes 3-5% more CPU and 15% less memory (16 MiB blocks of 320,000
    rows were one batch)."""
    return max(SMALLEST_BATCH, min(MAX_RECORDS, ERRORS_PER_BATCH // (fields + 1)))
