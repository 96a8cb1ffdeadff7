"""Matching a file's header to its schema's fields, by name, and the faults of the header.

Columns are matched by name, as frictionless does with `schema_sync` and as Validata does, so a
missing or extra column is one fault instead of a cascade of misplaced values. Then, unlike them,
a label that differs from a field's name only by case or accents (`NomAttribuant`, `Libelle`)
is matched to it with a fault of its own, and its cells are checked: the producer learns the
spelling is wrong *and* what is wrong in the data.
"""

from __future__ import annotations

from dataclasses import dataclass

from dinum_pipelines.lib.conformance.faults import Fault
from dinum_pipelines.lib.conformance.schema import Field, Schema
from dinum_pipelines.lib.declare.names import fold


@dataclass(frozen=True)
class HeaderMatch:
    # For each column of the file, the field it holds (None: an extra or blank column, or a repeat).
    fields: list[Field | None]
    # Schema fields that no column holds.
    missing: list[Field]
    faults: list[Fault]

    def position_of(self, name: str) -> int | None:
        return next((index for index, field in enumerate(self.fields) if field is not None and field.name == name), None)


def match_header(labels: list[str], schema: Schema, renames: dict[str, str] | None = None) -> HeaderMatch:
    """Pair each label with a field; `renames` maps old labels to schema names (a producer's older vocabulary)."""
    renames = renames or {}
    faults: list[Fault] = []
    fields: list[Field | None] = [None] * len(labels)
    by_name = {field.name: field for field in reversed(schema.fields)}  # the first declaration wins
    taken: set[str] = set()
    seen: dict[str, int] = {}
    for index, label in enumerate(labels):
        number = index + 1
        if not label.strip():
            faults.append(Fault(code="blank-label", field_number=number, expected="", note="label is blank"))
            continue
        if label in seen:
            faults.append(
                Fault(
                    code="duplicate-label",
                    field=label,
                    field_number=number,
                    value=label,
                    note=f'at position "{seen[label] + 1}"',
                )
            )
            continue
        seen[label] = index
        name = renames.get(label, label)
        if name in by_name and name not in taken:
            fields[index] = by_name[name]
            taken.add(name)
    folded = {}
    for field in schema.fields:
        if field.name not in taken:
            folded.setdefault(fold(field.name), field)
    for index, label in enumerate(labels):
        if fields[index] is not None or not label.strip() or seen.get(label) != index:
            continue
        field = folded.get(fold(label))
        if field is not None and field.name not in taken:
            fields[index] = field
            taken.add(field.name)
            faults.append(
                Fault(
                    code="label-case-or-accents",
                    field=field.name,
                    field_number=index + 1,
                    value=label,
                    note=f'label "{label}" matches field "{field.name}" only without case and accents',
                )
            )
    for index, label in enumerate(labels):
        if fields[index] is None and label.strip() and seen.get(label) == index:
            faults.append(Fault(code="extra-label", field_number=index + 1, value=label, note=f'label "{label}"'))
    missing = [field for field in schema.fields if field.name not in taken and by_name[field.name] is field]
    for offset, field in enumerate(missing):
        faults.append(
            Fault(
                code="missing-label",
                field=field.name,
                field_number=len(labels) + offset + 1,
                expected="obligatoire" if field.required else "facultative",
                note="required" if field.required or field.name in schema.primary_key else "optional",
            )
        )
    return HeaderMatch(fields=fields, missing=missing, faults=faults)
