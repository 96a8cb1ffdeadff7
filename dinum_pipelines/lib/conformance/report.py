"""The conformance report: every fault of a file against its schema, as data and as French text.

Nothing is capped: the JSON lists every fault. The text a producer reads groups them by column
and code, with the rows, so that ten thousand faults of one kind read as one line to fix.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from dinum_pipelines.lib.conformance.faults import CATALOGUE, HEADER_CODES, Fault

# Rows listed per (column, code) group in the text report; the JSON has them all.
ROWS_SHOWN = 20


@dataclass
class ConformanceReport:
    source: str
    schema: str
    faults: list[Fault]
    rows: int = 0
    labels: list[str] = field(default_factory=list)
    schema_warnings: list[str] = field(default_factory=list)
    detected: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.faults

    def counts(self) -> Counter[tuple[str, str | None]]:
        """Faults per (code, field)."""
        return Counter((fault.code, fault.field) for fault in self.faults)

    def counts_by_code(self) -> dict[str, int]:
        return dict(sorted(Counter(fault.code for fault in self.faults).items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "source": self.source,
            "schema": self.schema,
            "rows": self.rows,
            "error_count": len(self.faults),
            "counts": self.counts_by_code(),
            "errors": [fault.to_dict() for fault in self.faults],
            "schema_warnings": self.schema_warnings,
            "detected": self.detected,
        }

    def groups(self) -> list[tuple[str, str, list[Fault]]]:
        """Faults grouped by (column, code), in the file's order of first appearance."""
        grouped: dict[tuple[str, str], list[Fault]] = defaultdict(list)
        for fault in self.faults:
            grouped[(fault.field or "", fault.code)].append(fault)
        return [(column, code, faults) for (column, code), faults in grouped.items()]

    def to_text(self) -> str:
        lines = [f"Fichier : {self.source}", f"Schéma : {self.schema}", f"Lignes de données : {self.rows}"]
        for warning in self.schema_warnings:
            lines.append(f"Avertissement sur le schéma : {warning}")
        if self.valid:
            lines.append("Le fichier est conforme au schéma.")
            return "\n".join(lines) + "\n"
        lines.append(f"Le fichier n'est pas conforme : {len(self.faults)} erreur(s).")
        lines.append("")
        for column, code, faults in self.groups():
            title = CATALOGUE.get(code, (code, ""))[0]
            where = f"colonne « {column} »" if column else "en-tête" if code in HEADER_CODES else "fichier"
            lines.append(f"- {title} ({code}), {where} : {len(faults)} erreur(s)")
            for fault in faults[:ROWS_SHOWN]:
                lines.append(f"    {fault.message}")
            if len(faults) > ROWS_SHOWN:
                rows = [fault.row for fault in faults[ROWS_SHOWN:] if fault.row is not None]
                lines.append(f"    … et {len(faults) - ROWS_SHOWN} autre(s) (lignes {row_ranges(rows)})")
        return "\n".join(lines) + "\n"


def row_ranges(rows: list[int]) -> str:
    """`2, 3, 4, 9` -> `2-4, 9`: every row, in little space."""
    parts: list[str] = []
    start = previous = None
    for row in [*sorted(set(rows)), None]:
        if row is not None and previous is not None and row == previous + 1:
            previous = row
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = row
    return ", ".join(parts)
