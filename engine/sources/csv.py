"""CSV files: header row, RFC 4180 quoting, UTF-8 with or without BOM (or another dialect:
delimiter, quote character, encoding; see ``engine.sources.dialect``).

Fields are split with vectorized Polars string operations: a plain ``split(",")`` for records
without quotes (almost all of them) and an RFC 4180 regex for the rest. A record that cannot be
split (wrong field count, bad quoting, invalid UTF-8) becomes a malformed row carrying its raw
text; a quoted newline that turns out not to close properly is undone, so one stray quote
costs one row, not the rest of the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from engine.batch import LINE, MALFORMED, MALFORMED_MSG, RAW, ROW, RawBatch
from engine.errors import Remedy, SourceError
from engine.sources.blocks import BOM, Records, wide_bom
from engine.sources.dialect import CsvDialect, guess_delimiter
from engine.sources.inputs import HashingReader, Input
from engine.sources.records import (
    MAX_RECORDS,
    Cutter,
    RecordTooLarge,
    decode_records,
    iter_records,
    only_blank_lines,
    physical_lines,
    quote_boundaries,
)

DEFAULT = CsvDialect()
FIELDS = "__fields"
# The widest header read: each column is a Polars column and an expression or more per batch
# (30,000 columns: about 6 s and 460 MB; 300,000 took 54 s and 2 GB).
MAX_COLUMNS = 50_000
ERROR = "__split_error"


def field_pattern(delimiter: str, quote: str) -> str:
    """One field, with the separator that precedes it: quoted (with doubled quotes inside),
    unquoted, or empty. Characters as hex escapes: any of them is safe in the pattern. Only a
    quoted field holds a line end; a quote inside an unquoted field is text (``a"b``), as
    Python's csv reads it."""
    d, q = (f"\\x{{{ord(c):02x}}}" for c in (delimiter, quote))
    return f"{d}(?:{q}(?:[^{q}]|{q}{q})*{q}|[^{d}{q}\\r\\n][^{d}\\r\\n]*|)"


def split_fields(text: pl.Series, dialect: CsvDialect = DEFAULT) -> pl.DataFrame:
    """Split records into a list of fields; ``ERROR`` names the quoting problem if any."""
    sep, quote = dialect.delimiter, dialect.quote
    frame = pl.DataFrame({"i": np.arange(len(text)), "t": text})
    has_quote = pl.col("t").str.contains(quote, literal=True)
    if not frame.select(has_quote.any()).item():
        return frame.select(
            pl.col("t").str.split(sep).alias(FIELDS), pl.lit(None, pl.String).alias(ERROR)
        )
    plain = frame.filter(~has_quote).select(
        "i", pl.col("t").str.split(sep).alias(FIELDS), pl.lit(None, pl.String).alias(ERROR)
    )
    matches = (sep + pl.col("t")).str.extract_all(field_pattern(sep, quote))
    consumed = matches.list.eval(pl.element().str.len_bytes()).list.sum()
    complete = consumed == pl.col("t").str.len_bytes() + 1
    odd_quotes = pl.col("t").str.count_matches(quote, literal=True) % 2 == 1
    element = pl.element()
    unquoted = matches.list.eval(
        pl.when(element.str.starts_with(sep + quote))
        .then(element.str.slice(2).str.head(-1).str.replace_all(quote * 2, quote, literal=True))
        .otherwise(element.str.slice(1))
    )
    quoted = frame.filter(has_quote).select(
        "i",
        unquoted.alias(FIELDS),
        pl.when(complete)
        .then(None)
        .when(odd_quotes)
        .then(pl.lit("csv_unterminated_quote"))
        .otherwise(pl.lit("csv_stray_quote"))
        .alias(ERROR),
    )
    return pl.concat([plain, quoted]).sort("i").drop("i")


QUOTE_MESSAGES = {
    "csv_unterminated_quote": "Unterminated quoted field: a field opens a quote that the line never closes",
    "csv_stray_quote": "Malformed quoting: a quoted field is followed by text before the next separator",
}


def read_header(
    records: Records,
    source: str,
    dialect: CsvDialect = DEFAULT,
    expected: tuple[str, ...] | None = None,
) -> tuple[str, ...]:
    """The header's names. With ``expected`` (the model's input keys), a header none of whose
    names the model knows, split by another delimiter into some it knows, stops the run."""
    stop = int(records.starts[1]) if len(records) > 1 else records.stop
    header = Records(
        records.data, records.starts[:1], stop, records.lines[:1], records.newlines_inside[:1]
    )
    text, bad = decode_records(header)
    if bad[0] is not None:
        encoding = "UTF-8" if dialect.is_utf8 else dialect.encoding
        problem = f"header is not valid {encoding} ({bad[0]})"
        wide = wide_bom(records.data) if dialect.is_utf8 else None
        if wide is None:
            raise SourceError(source, problem, line=1)
        raise SourceError(
            source,
            f"{problem}; it starts with a {wide.upper()} byte order mark",
            line=1,
            hint=Remedy("use {}", "encoding", (wide,)),
        )
    first = text[:1]
    if first[0] == "":
        raise SourceError(source, "the first line is empty; expected a header row", line=1)
    split = split_fields(first, dialect)
    if split[ERROR][0] is not None:
        raise SourceError(
            source, f"cannot read the header row: {QUOTE_MESSAGES[split[ERROR][0]]}", line=1
        )
    names: list[str] = split[FIELDS][0].to_list()
    if len(names) > MAX_COLUMNS:
        raise SourceError(
            source,
            f"the header row has {len(names):,} columns, more than the {MAX_COLUMNS:,} read",
            line=1,
        )
    seen: set[str] = set()
    for name in names:
        if name.startswith("__"):
            raise SourceError(
                source,
                f"column {name!r} in the header row: names starting with '__' are reserved "
                "for the engine's own columns (lineage, rule results); rename it",
                line=1,
            )
        if name == "*" or (name.startswith("^") and name.endswith("$")):
            raise SourceError(
                source,
                f"column {name!r} in the header row: '*', and a name that starts with '^' and "
                "ends with '$', are read as patterns by Polars, which the engine runs on; "
                "rename it",
                line=1,
            )
        if name in seen:
            raise SourceError(source, f"duplicate column {name!r} in the header row", line=1)
        seen.add(name)
    if expected and not seen.intersection(expected):
        guess = guess_delimiter(first[0], expected, dialect.delimiter)
        if guess is not None:
            raise _misread(source, expected, guess)
    return tuple(names)


def _misread(source: str, expected: tuple[str, ...], guess: str) -> SourceError:
    """No name of the header is one the model reads, and another delimiter would make some:
    the file is read with the wrong one (each row would be invalid with ``missing``, or
    valid with every default). A header that fits no delimiter is read as it is: the
    model may default every field, and Pydantic's verdicts stand."""
    shown = ", ".join(expected[:8]) + (", ..." if len(expected) > 8 else "")
    return SourceError(
        source,
        f"no column of the header matches the model (it reads {shown})",
        line=1,
        hint=Remedy(f"is the delimiter {guess!r}? pass {{}}", "delimiter", (guess,)),
    )


class CsvSource:
    """Lazily reads a CSV file or stream as RawBatches of at most one block of input each."""

    format = "csv"

    def __init__(
        self,
        source: Path | Input,
        *,
        block_size: int,
        max_record_bytes: int,
        dialect: CsvDialect = DEFAULT,
        expected: tuple[str, ...] | None = None,
        max_records: int = MAX_RECORDS,
    ) -> None:
        self.reader = HashingReader(source, block_size)
        self.max_records = max_records
        self.name = self.reader.name
        self.max_record_bytes = max_record_bytes
        self.dialect = dialect
        self.expected = expected
        self._encoding = None if dialect.is_utf8 else dialect.encoding
        self.keys: tuple[str, ...] = ()
        self.blank_lines = 0
        self._next_row = 1

    def batches(self) -> Iterator[RawBatch]:
        cutter = Cutter(
            quote_boundaries(self.dialect.quote.encode(), self.dialect.delimiter.encode()),
            self.max_record_bytes,
            max_records=self.max_records,
        )
        header_done = False
        try:
            for records in iter_records(cutter, self._blocks()):
                if not header_done:
                    self.keys = read_header(records, self.name, self.dialect, self.expected)
                    header_done = True
                    records = _drop_first(records)
                    if not len(records):
                        continue
                if only_blank_lines(records):
                    self.blank_lines += len(records)
                    continue
                yield self._batch(records)
        except RecordTooLarge as exc:
            raise SourceError(
                self.name,
                exc.what,
                line=exc.line,
                hint=exc.remedy()
                if exc.across_lines
                else exc.remedy("is this really a CSV file? raise {} if it is"),
            ) from exc
        if not header_done:
            raise SourceError(self.name, "file is empty; expected a header row")

    def _blocks(self) -> Iterator[bytes]:
        first = True
        for block in self.dialect.transcode(self.reader.blocks(), self.name):
            if first and block.startswith(BOM):
                block = block[len(BOM) :]
            first = False
            yield block

    def _batch(self, records: Records) -> RawBatch:
        frame = self._parse(records)
        blank = frame[RAW] == ""
        self.blank_lines += int(blank.sum())
        frame = frame.filter(~blank)
        frame = frame.with_columns(
            pl.int_range(self._next_row, self._next_row + frame.height, dtype=pl.Int64).alias(ROW)
        )
        self._next_row += frame.height
        return RawBatch(frame, self.keys, typed=False)

    def _parse(self, records: Records) -> pl.DataFrame:
        decoded = decode_records(records, self._encoding)
        plain = self._read_plain(records) if decoded[1].null_count() == len(records) else None
        if plain is not None:
            return pl.DataFrame({LINE: records.lines, RAW: decoded[0]}).with_columns(
                pl.lit(None, pl.String).alias(MALFORMED),
                pl.lit(None, pl.String).alias(MALFORMED_MSG),
                *plain,
            )
        frame = self._split(records, decoded)
        if records.newlines_inside.any():
            frame = self._undo_bad_multiline(records, frame)
        n = len(self.keys)
        count = pl.col(FIELDS).list.len()
        message = (
            pl.when(pl.col(MALFORMED) == self.dialect.bad_text)
            .then(pl.col("__utf8"))
            .when(pl.col(MALFORMED).is_in(list(QUOTE_MESSAGES)))
            .then(pl.col(MALFORMED).replace_strict(QUOTE_MESSAGES, default=None))
            .when(pl.col(MALFORMED).is_not_null())
            .then(pl.format(f"Expected {n} fields, found {{}}", count))
        )
        good = pl.col(MALFORMED).is_null()
        cells = [
            pl.when(good)
            .then(pl.col(FIELDS).list.get(i, null_on_oob=True))
            .replace("", None)
            .alias(key)
            for i, key in enumerate(self.keys)
        ]
        return frame.select(LINE, RAW, MALFORMED, message.alias(MALFORMED_MSG), *cells)

    def _read_plain(self, records: Records) -> pl.DataFrame | None:
        """Cells of a block of plain records, by Polars' CSV reader (twice as fast as splitting
        strings), or None when the block needs the general path.

        Plain: valid UTF-8 (checked by the caller), no quote, no carriage return, and exactly
        n - 1 commas per record: the reader refuses a record with more, so a total of
        n - 1 times the record count means every record has exactly that many (and none is
        blank).
        """
        n = len(self.keys)
        start = int(records.starts[0])
        separators = np.count_nonzero(
            np.frombuffer(records.data, np.uint8, records.stop - start, start)
            == ord(self.dialect.delimiter)
        )
        if n < 2 or separators != (n - 1) * len(records):
            return None
        body = records.data[start : records.stop]
        # Polars' reader would drop a BOM opening the buffer, i.e. from the first record's cell.
        if self.dialect.quote.encode() in body or b"\r" in body or body.startswith(BOM):
            return None
        try:
            cells = pl.read_csv(
                body,
                has_header=False,
                new_columns=list(self.keys),
                schema=dict.fromkeys(self.keys, pl.String()),
                separator=self.dialect.delimiter,
                quote_char=None,
            )
        except pl.exceptions.PolarsError:  # a ragged record: the general path says which
            return None
        if cells.height != len(records):
            return None
        # The reader returns a chunk per thread; the rules run a third faster on one.
        return cells.rechunk()

    def _split(
        self, records: Records, decoded: tuple[pl.Series, pl.Series] | None = None
    ) -> pl.DataFrame:
        text, utf8_errors = decoded or decode_records(records, self._encoding)
        split = split_fields(text, self.dialect)
        n = len(self.keys)
        count = pl.col(FIELDS).list.len()
        frame = pl.DataFrame({LINE: records.lines, RAW: text, "__utf8": utf8_errors}).with_columns(
            split[FIELDS], split[ERROR]
        )
        return frame.with_columns(
            pl.when(pl.col("__utf8").is_not_null())
            .then(pl.lit(self.dialect.bad_text))
            .when(pl.col(ERROR).is_not_null())
            .then(pl.col(ERROR))
            .when(count > n)
            .then(pl.lit("csv_too_many_fields"))
            .when(count < n)
            .then(pl.lit("csv_too_few_fields"))
            .alias(MALFORMED),
        )

    def _undo_bad_multiline(self, records: Records, frame: pl.DataFrame) -> pl.DataFrame:
        """Multi-line records that fail to split were most likely cut by a stray quote: use
        their lines instead. Only a well-quoted record with the wrong number of fields stays
        one row, as Python's csv module reads it."""
        field_count = pl.col(MALFORMED).is_in(["csv_too_many_fields", "csv_too_few_fields"])
        # A byte the encoding cannot decode is no sign of a stray quote: the record stays
        # whole, one invalid row, as Python's csv module frames it.
        undecodable = pl.col("__utf8").is_not_null()
        broken = pl.col(MALFORMED).is_not_null() & ~field_count & ~undecodable
        bad = frame.select(broken).to_series()
        failed = np.flatnonzero(records.newlines_inside & bad.to_numpy())
        if len(failed) == 0:
            return frame
        keep = np.ones(len(records), dtype=np.bool_)
        keep[failed] = False
        parts = [frame.filter(pl.Series(keep))]
        parts.extend(self._split(physical_lines(records, int(index))) for index in failed)
        return pl.concat(parts).sort(LINE)


def _drop_first(records: Records) -> Records:
    return Records(
        records.data,
        records.starts[1:],
        records.stop,
        records.lines[1:],
        records.newlines_inside[1:],
    )
