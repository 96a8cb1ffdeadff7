"""Judging a raw file against its Table Schema, batch by batch, every fault reported.

Nothing stops the validation: a missing column is one `missing-label` and the other columns are
still checked; a row with too few cells gets its `missing-cell` faults and its other cells are
still judged. Row-level work is done per batch of rows (see `source.py`), and what spans batches
(uniqueness, primary and unique keys, foreign keys) keeps only the key columns, not the rows.

Semantics follow frictionless 5 with columns matched by name; where we deliberately differ (we
see faults it does not), the tests' deviations table says where and why.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dinum_pipelines.lib.clean.cleaning import string_bytes
from dinum_pipelines.lib.conformance import custom_checks
from dinum_pipelines.lib.conformance.custom_checks import BatchView
from dinum_pipelines.lib.conformance.cells import FieldJudge
from dinum_pipelines.lib.conformance.faults import Fault, show_value
from dinum_pipelines.lib.conformance.header import HeaderMatch, match_header
from dinum_pipelines.lib.conformance.report import ConformanceReport
from dinum_pipelines.lib.conformance.schema import Field, Schema
from dinum_pipelines.lib.conformance.source import RawBatch, RawTable, open_source
from dinum_pipelines.lib.declare.registry import SourceSpec
from dinum_pipelines.lib.clean.repeats import POSITION, parquet_database, positions, quoted
from dinum_pipelines.lib.streams import prefetched

_TYPE_NAMES = {
    "string": "une chaîne de caractères",
    "number": "un nombre (avec un point décimal)",
    "integer": "un nombre entier",
    "boolean": "un booléen",
    "date": "une date",
    "datetime": "une date et heure",
    "time": "une heure",
    "year": "une année sur quatre chiffres",
    "yearmonth": "une année et un mois (AAAA-MM)",
    "duration": "une durée ISO 8601 (P1DT2H)",
    "geopoint": "un point géographique",
    "geojson": "un objet GeoJSON",
    "object": "un objet JSON",
    "array": "une liste JSON",
    "list": "une liste",
    "any": "une valeur",
}
_FORMAT_NAMES = {
    "email": "une adresse électronique valide",
    "uri": "une adresse web (URI) valide",
    "uuid": "un identifiant UUID valide",
    "binary": "du base64 valide",
}
# Columns judged at once; more threads than cores only add memory.
MAX_THREADS = 4
# Text damaged before it reached us: U+FFFD, UTF-8 read as Latin-1 (`Ã©` for `é`, `â€™` for `’`),
# or control characters no text holds (NUL, form feed...: tab and line breaks are text).
_DAMAGED_TEXT = r"\x{FFFD}|[ÃÂ][\x{80}-\x{BF}]|â€|[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]"
_CONTROL = re.compile(r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]")


def _type_expectation(field: Field) -> str:
    if field.type == "string" and field.format in _FORMAT_NAMES:
        return f"n'est pas {_FORMAT_NAMES[field.format]}"
    text = f"n'est pas {_TYPE_NAMES.get(field.type, field.type)}"
    if field.type in ("date", "datetime", "time") and field.format not in ("default", "any"):
        text += f" au format {field.format}"
    elif field.type == "date" and field.format == "default":
        text += " au format AAAA-MM-JJ"
    elif field.type == "datetime" and field.format == "default":
        text += " au format AAAA-MM-JJTHH:MM:SS"
    elif field.type == "boolean":
        text += f" ({' / '.join(field.true_values)} ou {' / '.join(field.false_values)})"
    elif field.type == "number" and field.decimal_char != ".":
        text = f"n'est pas un nombre (séparateur décimal « {field.decimal_char} »)"
    elif field.type == "geopoint":
        text += {"array": " ([longitude, latitude])", "object": ' ({"lon": …, "lat": …})'}.get(field.format, " (« longitude, latitude »)")
    return text


def _constraint_expectation(field: Field, name: str) -> str:
    if name.startswith("arrayItem.") and field.array_item is not None:
        return "contient un élément qui " + _constraint_expectation(field.array_item, name.removeprefix("arrayItem."))
    value = field.constraints.get(name)
    if name == "required":
        return "est vide alors que la colonne est obligatoire"
    if name == "pattern":
        return f"ne respecte pas le motif attendu {value}"
    if name == "enum":
        members = [str(member) for member in value]
        shown = ", ".join(members[:12]) + (", …" if len(members) > 12 else "")
        return f"ne fait pas partie des valeurs autorisées ({shown})"
    return {
        "minLength": f"est trop courte (au moins {value} caractères)",
        "maxLength": f"est trop longue (au plus {value} caractères)",
        "minimum": f"est inférieure au minimum {value}",
        "maximum": f"est supérieure au maximum {value}",
        "exclusiveMinimum": f"devrait être strictement supérieure à {value}",
        "exclusiveMaximum": f"devrait être strictement inférieure à {value}",
    }.get(name, f"ne respecte pas la contrainte {name} ({value})")


class _KeyLog:
    """Key values of rows, batch after batch, for the checks across the whole file.

    They go to a temporary Parquet file, not to memory (the keys of a file of tens of millions of
    rows are gigabytes), and the checks ask DuckDB over it (lib/clean/repeats.py: it spills to disk
    beyond its memory limit); the rows it names are then read back in batches, so each fault
    shows its values exactly as the typed keys hold them. Rows are appended in file order.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self._folder: tempfile.TemporaryDirectory | None = None
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def column(self, name: str) -> str:
        """The SQL column holding field `name` (fields are stored by position: any name is safe)."""
        return quoted(f"k{self.names.index(name)}")

    def add(self, rows: np.ndarray, keys: Sequence[pa.Array]) -> None:
        table = pa.table({"row": pa.array(rows, pa.int64()), **{f"k{i}": key for i, key in enumerate(keys)}})
        if self._writer is None:
            self._folder = tempfile.TemporaryDirectory(prefix="dinum-keys-")
            self._schema = table.schema
            self._writer = pq.ParquetWriter(Path(self._folder.name) / "keys.parquet", self._schema)
        elif table.schema != self._schema:
            table = table.cast(self._schema)
        self._writer.write_table(table)

    def written(self) -> Path | None:
        """The keys written so far, the file closed for reading (None when no row had keys)."""
        if self._writer is None:
            return None
        self._writer.close()
        return Path(self._folder.name) / "keys.parquet"

    def frames(self, names: Sequence[str], positions: np.ndarray | None = None) -> Iterator[pd.DataFrame]:
        """The rows (all, or those at `positions`, sorted) as frames of `row` and the fields
        `names`, a batch at a time, in file order."""
        path = self.written()
        if path is None:
            return
        columns = ["row", *(f"k{self.names.index(name)}" for name in names)]
        start = 0
        for batch in pq.ParquetFile(path).iter_batches(columns=columns):
            table = pa.Table.from_batches([batch])
            if positions is not None:
                wanted = positions[(positions >= start) & (positions < start + table.num_rows)] - start
                start += table.num_rows
                if not wanted.size:
                    continue
                table = table.take(pa.array(wanted))
            frame = pd.DataFrame({"row": table.column("row").to_numpy()})
            for name, column in zip(names, columns[1:]):
                frame[name] = table.column(column).to_pandas()
            yield frame

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._folder is not None:
            self._folder.cleanup()
        self._writer = self._folder = None


def _missing_value_cells(cells: pa.Array, values: tuple[str, ...]) -> np.ndarray:
    """Cells written as one of the missing values ("", "NA"...); absent cells are not. Only a cell
    as short as a missing value and starting with one's first byte can be one: the offsets and
    the bytes say which, and only those few are compared."""
    if not values:
        return np.zeros(len(cells), dtype=bool)
    offsets, data = string_bytes(cells)
    lengths = np.diff(offsets)
    present = np.ones(len(cells), dtype=bool) if cells.null_count == 0 else cells.is_valid().to_numpy(zero_copy_only=False)
    longest = max(len(value.encode()) for value in values)
    candidates = lengths == 0 if "" in values else np.zeros(len(cells), dtype=bool)
    if longest:
        data = data if data.size else np.zeros(1, dtype=np.uint8)
        first = data[np.minimum(offsets[:-1], data.size - 1)]
        starts = np.zeros(len(cells), dtype=bool)
        for byte in {value.encode()[0] for value in values if value}:
            starts |= first == byte
        candidates |= (lengths <= longest) & starts
    candidates &= present
    if longest == 0:
        return candidates
    found = np.zeros(len(cells), dtype=bool)
    positions = np.flatnonzero(candidates)
    if positions.size:
        hits = pc.is_in(cells.take(pa.array(positions)), value_set=pa.array(list(values), type=pa.large_string()))
        found[positions] = pc.fill_null(hits, False).to_numpy(zero_copy_only=False)
    return found


def _cell_faults(
    code: str, positions: np.ndarray, cells: pa.Array, rows: np.ndarray, field: str, number: int, **details: Any
) -> list[Fault]:
    """One fault per cell at `positions` of a column, with the cell's text (absent cells: "")."""
    if not positions.size:
        return []
    values = cells.take(pa.array(positions)).to_pylist()
    return [
        Fault(code=code, field=field, field_number=number, row=int(rows[position]), value=value or "", **details)
        for position, value in zip(positions, values)
    ]


def _only(cells: pa.Array, judged: np.ndarray) -> pa.Array:
    """`cells` with every cell not to be judged (missing, in a blank row, absent) made null, without
    copying the text: only the validity bitmap is new."""
    wanted = judged if cells.null_count == 0 else judged & cells.is_valid().to_numpy(zero_copy_only=False)
    if wanted.all() and cells.null_count == 0:
        return cells
    if cells.offset:
        return pc.if_else(pa.array(wanted), cells, pa.scalar(None, cells.type))
    validity = pa.py_buffer(np.packbits(wanted, bitorder="little"))
    _, offsets, data = cells.buffers()
    return pa.Array.from_buffers(cells.type, len(cells), [validity, offsets, data])


_CONTROL_BYTES = np.array([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F], dtype=np.uint8)


def _may_be_damaged(array: pa.Array) -> bool:
    """Whether any cell may hold U+FFFD or mojibake, from the column's bytes alone (no per-cell work):
    U+FFFD is EF BF BD in UTF-8; `Ã©`-style mojibake is C3 82|83 followed by C2; `â€` is C3 A2 E2."""
    _, data = string_bytes(array)
    if data.size < 3:
        return False
    if data.min() < 0x20 and bool(np.isin(data, _CONTROL_BYTES).any()):
        return True
    lead = np.flatnonzero(data[:-2] >= 0xC3)
    if not lead.size:
        return False
    first, second, third = data[lead], data[lead + 1], data[lead + 2]
    replacement = (first == 0xEF) & (second == 0xBF) & (third == 0xBD)
    mojibake = (first == 0xC3) & (((second == 0x82) | (second == 0x83)) & (third == 0xC2) | (second == 0xA2) & (third == 0xE2))
    return bool((replacement | mojibake).any())


class Validator:
    def __init__(
        self,
        schema: Schema,
        labels: list[str],
        *,
        fast: bool = True,
        renames: dict[str, str] | None = None,
        lookups: dict[str, dict[tuple[str, ...], set[tuple]]] | None = None,
    ) -> None:
        self.schema = schema
        self.labels = labels
        self.header: HeaderMatch = match_header(labels, schema, renames)
        self.faults: list[Fault] = list(self.header.faults)
        self.judges = {
            index: FieldJudge(field, fast=fast) for index, field in enumerate(self.header.fields) if field is not None
        }
        self.lookups = lookups or {}
        self.rows = 0
        present = {field.name for field in self.header.fields if field is not None}
        self.unique_fields = [field.name for field in schema.fields if field.constraints.get("unique") and field.name in present]
        self.primary_key = schema.primary_key if set(schema.primary_key) <= present else ()
        self.unique_keys = [key for key in schema.unique_keys if set(key) <= present]
        self.foreign_keys = [key for key in schema.foreign_keys if set(key.fields) <= present]
        self.key_fields = sorted(
            {*self.unique_fields, *self.primary_key}
            | {name for key in self.unique_keys for name in key}
            | {name for key in self.foreign_keys for name in key.fields}
            | {name for key in self.foreign_keys if not key.resource for name in key.reference_fields if name in present}
        )
        self.key_log = _KeyLog(self.key_fields)
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(MAX_THREADS, os.cpu_count() or 1)))
        self.checks, self.check_warnings = custom_checks.compile_checks(schema, present)

    def _name(self, index: int) -> str:
        field = self.header.fields[index]
        return field.name if field is not None else self.labels[index]

    def feed(self, batch: RawBatch) -> None:
        count = len(batch.rows)
        self.rows += count
        if not count:
            return
        missing: list[np.ndarray] = []
        absent: list[np.ndarray] = []
        for index, cells in enumerate(batch.columns):
            field = self.header.fields[index]
            values = field.missing_values if field is not None and field.missing_values is not None else self.schema.missing_values
            gone = cells.is_null().to_numpy(zero_copy_only=False) if cells.null_count else np.zeros(count, dtype=bool)
            absent.append(gone)
            missing.append(gone | _missing_value_cells(cells, values))
        blank = np.logical_and.reduce(missing) if missing else np.zeros(count, dtype=bool)
        keep = ~blank
        row_faults: list[Fault] = [Fault(code="blank-row", row=int(row), note="") for row in batch.rows[blank]]
        extra_by_row = [cell for cell in batch.extra_cells if not blank[cell[0] - batch.rows[0]]]
        row_faults.extend(
            Fault(code="extra-cell", field="", field_number=number, row=row, value=value, note="") for row, number, value in extra_by_row
        )
        view = BatchView(rows=batch.rows, keep=keep, text={}, missing={}, keys={})

        def judge_column(index: int) -> Iterable[Fault]:
            return self._column(index, batch.columns[index], batch.rows, keep, missing[index], absent[index], view)

        # Columns are judged side by side: most of the work is Arrow's and numpy's, which release the GIL.
        for faults in self._pool.map(judge_column, range(len(batch.columns))):
            row_faults.extend(faults)
        if self.key_fields:
            self.key_log.add(batch.rows[keep], [view.keys[name].filter(pa.array(keep)) for name in self.key_fields])
        for check in self.checks:
            row_faults.extend(check.run(view))
        row_faults.sort(key=Fault.sort_key)
        self.faults.extend(row_faults)

    def _column(
        self, index: int, cells: pa.Array, rows: np.ndarray, keep: np.ndarray, missing: np.ndarray, absent: np.ndarray, view: BatchView
    ) -> Iterable[Fault]:
        field = self.header.fields[index]
        name = self._name(index)
        number = index + 1
        faults: list[Fault] = []
        for position in np.flatnonzero(absent & keep):
            faults.append(Fault(code="missing-cell", field=name, field_number=number, row=int(rows[position]), value="", note=""))
        if _may_be_damaged(cells):
            faults.extend(self._damaged_text(cells, rows, keep, name, number))
        if field is None:
            return faults
        judge = self.judges[index]
        if field.required:
            faults.extend(
                _cell_faults(
                    "constraint-error", np.flatnonzero(missing & keep), cells, rows, name, number,
                    expected=_constraint_expectation(field, "required"), note='constraint "required" is "True"', constraint="required",
                )
            )
        judgement = judge.judge(_only(cells, ~missing & keep))
        faults.extend(
            _cell_faults(
                "type-error", np.flatnonzero(~judgement.type_ok), cells, rows, name, number,
                expected=_type_expectation(field), note=f'type is "{field.type}/{field.format}"',
            )
        )
        for constraint, mask in judgement.violations.items():
            owner = field.array_item if constraint.startswith("arrayItem.") and field.array_item else field
            plain = constraint.removeprefix("arrayItem.")
            note = f'{"array item " if owner is not field else ""}constraint "{plain}" is "{owner.constraints.get(plain)}"'
            faults.extend(
                _cell_faults(
                    "constraint-error", np.flatnonzero(mask), cells, rows, name, number,
                    expected=_constraint_expectation(field, constraint), note=note, constraint=constraint,
                )
            )
        view.text[name] = cells
        view.missing[name] = missing
        view.keys[name] = judgement.keys
        return faults

    def _damaged_text(self, cells: pa.Array, rows: np.ndarray, keep: np.ndarray, name: str, number: int) -> list[Fault]:
        hits = np.flatnonzero(pc.fill_null(pc.match_substring_regex(cells, _DAMAGED_TEXT), False).to_numpy(zero_copy_only=False) & keep)
        faults = []
        for position, value in zip(hits, cells.take(pa.array(hits)).to_pylist()):
            if "\ufffd" in value:
                code, expected = "replacement-character", ""
            elif match := _CONTROL.search(value):
                code, expected = "control-character", f"U+{ord(match.group()):04X}"
            else:
                code, expected = "mojibake", ""
            faults.append(Fault(code=code, field=name, field_number=number, row=int(rows[position]), value=value, expected=expected, note=""))
        return faults

    # --- Across the whole file ----------------------------------------------------------------------

    def close(self) -> None:
        self._pool.shutdown()

    def finish(self) -> list[Fault]:
        """The faults found across the whole file (keys), once every batch was fed."""
        faults: list[Fault] = []
        written = self.key_log.written() if self.key_fields else None
        if written is not None:
            with parquet_database(written) as db:
                for name in self.unique_fields:
                    faults.extend(self._repeats(db, [name], "unique-error"))
                if self.primary_key:
                    faults.extend(self._repeats(db, list(self.primary_key), "primary-key"))
                for key in self.unique_keys:
                    faults.extend(self._repeats(db, list(key), "unique-keys"))
                for key in self.foreign_keys:
                    faults.extend(self._foreign(db, key))
        self.key_log.discard()
        faults.sort(key=Fault.sort_key)
        return faults

    def _number(self, name: str) -> int | None:
        position = self.header.position_of(name)
        return position + 1 if position is not None else None

    def _repeats(self, db, names: list[str], code: str) -> list[Fault]:
        """Rows repeating the values of `names` in an earlier row (the earliest such row named);
        for keys, rows whose key is all empty too. As pandas groups them: empty equals empty."""
        faults: list[Fault] = []
        columns = [self.key_log.column(name) for name in names]
        if code != "unique-error":
            empty = " AND ".join(f"{column} IS NULL" for column in columns)
            for row in positions(db, f"SELECT row FROM t WHERE {empty} ORDER BY row"):
                faults.append(
                    Fault(
                        code=code,
                        row=int(row),
                        expected=f"l'identifiant ({', '.join(names)}) est vide",
                        note='cells composing the primary keys are all "None"',
                    )
                )
            domain = f"NOT ({empty})"
        else:
            domain = f"{columns[0]} IS NOT NULL"
        repeated = db.sql(
            f"SELECT {POSITION}, earlier FROM (SELECT {POSITION}, lag(row) OVER (PARTITION BY {', '.join(columns)} ORDER BY row) AS earlier "
            f"FROM t WHERE {domain}) WHERE earlier IS NOT NULL ORDER BY {POSITION}"
        ).to_arrow_table()
        if not repeated.num_rows:
            return faults
        earlier_rows = iter(repeated.column("earlier").to_numpy())
        found = ((int(frame_row), int(next(earlier_rows)), values)
                 for frame in self.key_log.frames(names, repeated.column(POSITION).to_numpy())
                 for frame_row, values in zip(frame["row"].to_numpy(), frame[names].itertuples(index=False)))
        for row, earlier, values in found:
            shown = ", ".join("" if _is_na(value) else show_value(value) for value in values)
            if code == "unique-error":
                faults.append(
                    Fault(
                        code=code,
                        field=names[0],
                        field_number=self._number(names[0]),
                        row=int(row),
                        value=shown,
                        expected=f"elle figure déjà ligne {int(earlier)}",
                        note=f"the same as in the row at position {int(earlier)}",
                    )
                )
            else:
                faults.append(
                    Fault(
                        code=code,
                        row=int(row),
                        value=shown,
                        expected=f"la combinaison ({', '.join(names)}) = ({shown}) figure déjà ligne {int(earlier)}",
                        note=f"the same as in the row at position {int(earlier)}",
                    )
                )
        return faults

    def _foreign(self, db, key: Any) -> list[Fault]:
        names = list(key.fields)
        if key.resource:
            lookup = self.lookups.get(key.resource, {}).get(tuple(key.reference_fields))
            if lookup is None:
                return []
            frames = self.key_log.frames(names)
        else:
            if not set(key.reference_fields) <= set(self.key_log.names):
                return []
            # Rows whose key (not all empty) no row holds in the referenced fields, empty equal to empty.
            fields = [self.key_log.column(name) for name in names]
            referenced = [self.key_log.column(name) for name in key.reference_fields]
            same = " AND ".join(f"r.{ref} IS NOT DISTINCT FROM t.{field}" for field, ref in zip(fields, referenced))
            missing = positions(
                db,
                f"SELECT {POSITION} FROM t WHERE NOT ({' AND '.join(f'{field} IS NULL' for field in fields)}) "
                f"AND NOT EXISTS (SELECT 1 FROM t AS r WHERE {same}) ORDER BY {POSITION}",
            )
            lookup = None
            frames = self.key_log.frames(names, missing)
        faults = []
        rows_and_values = ((row, values) for frame in frames for row, values in zip(frame["row"].to_numpy(), frame[names].itertuples(index=False)))
        for row, values in rows_and_values:
            cells = tuple(None if _is_na(value) else value for value in values)
            if all(value is None for value in cells) or (lookup is not None and cells in lookup):
                continue
            shown = ", ".join("" if value is None else show_value(value) for value in cells)
            target = key.resource or "cette table"
            faults.append(
                Fault(
                    code="foreign-key",
                    row=int(row),
                    value=shown,
                    expected=f"({', '.join(names)}) = ({shown}) ne figure pas dans {target} ({', '.join(key.reference_fields)})",
                    note=f'for "{", ".join(names)}": values "{shown}" not found in the lookup table "{key.resource}"',
                )
            )
        return faults


def _is_na(value: Any) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and value != value)


def key_values(table: RawTable, schema: Schema, fields: Sequence[str], *, fast: bool = True) -> set[tuple]:
    """The typed values of `fields` in a referenced table, as foreign keys compare them."""
    validator = Validator(schema, table.labels, fast=fast)
    collected: set[tuple] = set()
    if not set(fields) <= {field.name for field in validator.header.fields if field is not None}:
        return collected
    validator.key_fields = sorted(set(validator.key_fields) | set(fields))
    try:
        for batch in table.batches:
            validator.feed(batch)
    finally:
        validator.close()
    for frame in validator.key_log.frames(list(fields)):
        for values in frame[list(fields)].itertuples(index=False):
            collected.add(tuple(None if _is_na(value) else value for value in values))
    validator.key_log.discard()
    return collected


def validate_table(
    table: RawTable,
    schema: Schema,
    *,
    fast: bool = True,
    renames: dict[str, str] | None = None,
    lookups: dict[str, dict[tuple[str, ...], set[tuple]]] | None = None,
) -> ConformanceReport:
    """Every fault of `table` against `schema`."""
    validator = Validator(schema, table.labels, fast=fast, renames=renames, lookups=lookups)
    try:
        for batch in prefetched(table.batches, name="conformance-reader"):
            validator.feed(batch)
    finally:
        validator.close()
    faults = [*table.faults, *validator.faults, *validator.finish()]
    faults.sort(key=Fault.sort_key)
    origin = schema.name or schema.origin
    return ConformanceReport(
        source=table.name,
        schema=f"{origin} {schema.version}".strip(),
        faults=faults,
        rows=validator.rows,
        labels=table.labels,
        schema_warnings=[*schema.warnings, *validator.check_warnings],
        detected=table.detected,
    )


def validate_file(path: Path, schema: Schema, source: SourceSpec, name: str, *, fast: bool = True) -> ConformanceReport:
    """Every fault of the file at `path` (named `name` in messages: its URL, never a local path)."""
    table = open_source(path, source, name, missing_values=schema.missing_values, fast=fast)
    return validate_table(table, schema, fast=fast)
