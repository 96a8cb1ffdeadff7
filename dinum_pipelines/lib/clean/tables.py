"""Writing the clean table as the files reusers download: Parquet (typed) and CSV (UTF-8, RFC 4180).

Both go through Arrow: Parquet keeps real types (dates as dates, codes as strings), and Arrow's
CSV writer is an order of magnitude faster than `DataFrame.to_csv` on large tables. Files are
written to a temporary name and renamed, so a reader never sees half a file. The pipeline writes
them batch after batch (`CleanTableWriter`) and reads them back the same way (`parquet_batches`),
so no step holds a whole table.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from dinum_pipelines.lib.streams import BackgroundSink
from dinum_pipelines.lib.declare.registry import DatasetSpec


def to_arrow(frame: pd.DataFrame, spec: DatasetSpec) -> pa.Table:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    date_columns = {c.name for c in spec.columns if c.type == "date"}
    for index, name in enumerate(table.column_names):
        if name in date_columns:
            table = table.set_column(index, name, table.column(name).cast(pa.date32()))
    return table


def open_new_file(path: Path | str) -> pa.NativeFile:
    """A file just created empty (mkstemp), opened for Arrow's writers without truncating it.

    Arrow opens a path with O_TRUNC, and ext4 flushes a file truncated to nothing when it is closed
    (auto_da_alloc, meant for programs that rewrite a file in place): closing the 10M-row clean CSV
    waited ~0.5 s for the disk, and the Dagster event log's next fdatasync ~1 s more for the data
    that flush had allocated. Appending to the new, empty file writes the same bytes and leaves
    their writeback to the kernel's pace."""
    return pa.OSFile(str(path), "a")


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# A column "repeats its values" when its first rows hold at most this share of distinct values.
# Writing Parquet and checking the rules both decide on it, the first batch deciding for the others.
REPETITION_SAMPLE_ROWS = 1 << 16
REPETITION_MAX_DISTINCT_SHARE = 0.5


def repeats_values(column: pa.ChunkedArray | pa.Array) -> bool:
    """Whether the column's first REPETITION_SAMPLE_ROWS rows hold few distinct values (missing counts as one)."""
    sample = column.slice(0, REPETITION_SAMPLE_ROWS)
    return pc.count_distinct(sample, mode="all").as_py() <= REPETITION_MAX_DISTINCT_SHARE * len(sample)


def _dictionary_columns(table: pa.Table) -> list[str]:
    # Dictionary-encode every column but floating-point ones and those whose first rows are mostly
    # distinct (identifiers): amounts, surfaces, coordinates and identifiers are nearly all
    # distinct, so their dictionary is built only to be dropped when it outgrows its page
    # (floats: −10 % write time at 1M rows; the bench's mutation identifier: −8 % more, and a
    # file 5 % smaller).
    return [field.name for field in table.schema if not pa.types.is_floating(field.type) and repeats_values(table.column(field.name))]


CSV_WRITE_OPTIONS = pacsv.WriteOptions(include_header=True, quoting_style="needed")


def _atomic_arrow_write(path: Path, write: Callable[[pa.NativeFile], None]) -> None:
    """`write` an Arrow file into a new file (open_new_file), which replaces `path` once whole."""

    def into_new_file(tmp: str) -> None:
        with open_new_file(tmp) as sink:
            write(sink)

    _atomic_write(path, into_new_file)


def write_parquet(table: pa.Table, path: Path) -> None:
    dictionary = _dictionary_columns(table)
    _atomic_arrow_write(path, lambda sink: pq.write_table(table, sink, compression="zstd", use_dictionary=dictionary))


def write_csv(table: pa.Table, path: Path) -> None:
    _atomic_arrow_write(path, lambda sink: pacsv.write_csv(table, sink, write_options=CSV_WRITE_OPTIONS))


class CleanTableWriter:
    """The clean Parquet and CSV files written batch after batch, so that memory does not grow with
    the table; both go to temporary names in their folder and replace the published names only on
    `commit`, so a reader never sees half a file and a failed run leaves the previous files.

    The first batch's schema is the file's: later batches are cast to it (the cleaning step types
    every batch alike). Each batch becomes one or more Parquet row groups.
    """

    def __init__(self, parquet: Path, csv: Path) -> None:
        self.targets = (parquet, csv)
        parquet.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = tuple(self._temporary_name(path) for path in self.targets)
        self.schema: pa.Schema | None = None
        self.rows = 0
        self._parquet: pq.ParquetWriter | None = None
        self._csv: pacsv.CSVWriter | None = None
        self._files: list[pa.NativeFile] = []
        # The CSV is written in a thread of its own while the caller's thread writes the Parquet:
        # each writer is single-threaded C++ that releases the GIL, and one after the other they
        # were the slowest stage of the cleaning's pipeline (lib/streams.py).
        self._csv_sink: BackgroundSink | None = None

    @staticmethod
    def _temporary_name(path: Path) -> Path:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        return Path(name)

    def write(self, table: pa.Table) -> None:
        if self.schema is None:
            self.schema = table.schema
            self._files = [open_new_file(path) for path in self.temporary]
            self._parquet = pq.ParquetWriter(
                self._files[0], self.schema, compression="zstd", use_dictionary=_dictionary_columns(table)
            )
            self._csv = pacsv.CSVWriter(self._files[1], self.schema, write_options=CSV_WRITE_OPTIONS)
            self._csv_sink = BackgroundSink(self._csv.write_table, depth=1, name="clean-csv-writer")
        elif table.schema != self.schema:
            table = table.cast(self.schema)
        self._csv_sink.put(table)
        self._parquet.write_table(table)
        self.rows += table.num_rows

    def close(self, *, raise_error: bool = True) -> None:
        """Finish writing; the files stay under their temporary names (`temporary`) until `commit`."""
        try:
            if self._csv_sink is not None:
                sink, self._csv_sink = self._csv_sink, None
                sink.close(raise_error=raise_error)
        finally:
            try:
                for writer in (self._parquet, self._csv):
                    if writer is not None:
                        writer.close()
            finally:
                for file in self._files:
                    file.close()
                self._parquet = self._csv = None
                self._files = []

    def commit(self) -> None:
        if self.schema is None:
            raise ValueError(f"{self.targets[0].name}: no batch was written, not even an empty one")
        self.close()
        for temporary, target in zip(self.temporary, self.targets):
            os.replace(temporary, target)

    def discard(self) -> None:
        """Drop the temporary files (nothing once committed): the published names are untouched."""
        self.close(raise_error=False)
        for temporary in self.temporary:
            temporary.unlink(missing_ok=True)


# Rows of a clean file read at a time by the steps after cleaning.
PARQUET_BATCH_ROWS = 1 << 18


def parquet_batches(path: Path, batch_rows: int | None = None, columns: list[str] | None = None, dictionaries: list[str] | None = None):
    """The Parquet file's rows as Arrow tables of at most `batch_rows` rows, in order (memory
    bounded by one batch). At least one table, maybe empty, with the file's schema.

    The `dictionaries` columns come as dictionary arrays, straight from the file's dictionary
    pages: a repetitive text column is then neither materialised value by value nor hashed again
    by a reader that wants its distinct values."""
    batch_rows = batch_rows or PARQUET_BATCH_ROWS
    # pre_buffer (pyarrow's default) keeps every column chunk it read until the file is closed:
    # reading the 30M-row clean file in batches grew to 1.4 GB with it, stayed at 0.3 GB without.
    parquet = pq.ParquetFile(path, pre_buffer=False, read_dictionary=dictionaries or None)
    emitted = False
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns, use_threads=True):
        emitted = True
        yield pa.Table.from_batches([batch])
    if not emitted:
        yield parquet.schema_arrow.empty_table() if columns is None else parquet.schema_arrow.empty_table().select(columns)


def first_rows(path: Path, count: int = 10) -> pd.DataFrame:
    """The first rows of a Parquet file, without reading the rest (for previews)."""
    return next(parquet_batches(path, count)).slice(0, count).to_pandas()


def write_json(document: Any, path: Path) -> None:
    """A report next to the clean files (cleaning, conformance), written atomically like them."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(document, handle, ensure_ascii=False, indent=1, default=str)

    _atomic_write(path, write)


def read_parquet(path: Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()
