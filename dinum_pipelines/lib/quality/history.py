"""The quality report dataset: one row per dataset and run, from every quality check evaluation.

Etalab staff want the state of every dataset at a glance, including those never published
because their data was blocked. Dagster already keeps every check evaluation (with the figures
the check put in its metadata); this module turns those evaluations into a table, one row per
dataset and run (a run may evaluate several checks: the worst status wins and the rule counts
add up), and answers "latest status and trend" for the catalog's quality page.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

PASSED, WARNING, BLOCKED = "passed", "warning", "blocked"
# How the catalog finds the report among its datasets: this tag (indexed) and the `dinum:slug` extra.
QUALITY_REPORT_SLUG = "quality_report"
QUALITY_REPORT_TAG = "rapport-qualite-dinum"
_RANK = {PASSED: 0, WARNING: 1, BLOCKED: 2}
# The trend shown per dataset: success percentages of its last runs, oldest first.
TREND_RUNS = 10


@dataclass(frozen=True)
class CheckEvaluation:
    """One check's evaluation in one run, as Dagster recorded it."""

    dataset: str
    check: str
    run_id: str
    evaluated_at: datetime
    passed: bool
    blocking: bool  # failed with ERROR severity, so publication was refused
    metadata: dict[str, Any]
    # The storage's order of evaluations: times are stored to the second, and two runs can share one.
    sequence: int = 0

    @property
    def status(self) -> str:
        return PASSED if self.passed else BLOCKED if self.blocking else WARNING


COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "dataset": (pa.string(), "Identifiant (slug) du jeu de données dans le registre du pipeline"),
    "title": (pa.string(), "Titre du jeu de données"),
    "organization": (pa.string(), "Organisation productrice (slug)"),
    "run_id": (pa.string(), "Identifiant de l'exécution Dagster"),
    "checked_at": (pa.timestamp("s", tz="UTC"), "Date et heure (UTC) de la vérification"),
    "status": (pa.string(), "passed : tout est conforme ; warning : avertissements non bloquants ; blocked : publication refusée"),
    "success_percent": (pa.float64(), "Part des règles respectées, en pourcentage"),
    "evaluated_rules": (pa.int64(), "Nombre de règles évaluées"),
    "failed_rules": (pa.int64(), "Nombre de règles en échec (bloquantes ou non)"),
    "blocking_failures": (pa.int64(), "Nombre de règles bloquantes en échec"),
    "row_count": (pa.int64(), "Nombre de lignes de la table vérifiée"),
    "failed_columns": (pa.string(), "Colonnes concernées par les échecs, séparées par des virgules"),
    "failed_checks": (pa.string(), "Contrôles Dagster en échec, séparés par des virgules"),
}
SCHEMA = pa.schema([(name, kind) for name, (kind, _) in COLUMNS.items()])


def _number(metadata: dict[str, Any], key: str) -> float | None:
    value = metadata.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def report_rows(evaluations: Iterable[CheckEvaluation], datasets: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """One row per (dataset, run), oldest first. `datasets` maps a slug to (title, organization)."""
    grouped: dict[tuple[str, str], list[CheckEvaluation]] = {}
    for evaluation in evaluations:
        grouped.setdefault((evaluation.dataset, evaluation.run_id), []).append(evaluation)
    rows, order = [], {}
    for (dataset, run_id), group in grouped.items():
        order[(dataset, run_id)] = max(e.sequence for e in group)
        evaluated = sum(int(_number(e.metadata, "evaluated_rules") or 0) for e in group)
        failed = sum(int(_number(e.metadata, "failed_rules") or (0 if e.passed else 1)) for e in group)
        rows_checked = [n for e in group if (n := _number(e.metadata, "row_count")) is not None]
        columns = sorted({c.strip() for e in group for c in str(e.metadata.get("failed_columns") or "").split(",") if c.strip()})
        title, organization = datasets.get(dataset, (dataset, ""))
        rows.append(
            {
                "dataset": dataset,
                "title": title,
                "organization": organization,
                "run_id": run_id,
                "checked_at": max(e.evaluated_at for e in group).astimezone(UTC),
                "status": max((e.status for e in group), key=_RANK.__getitem__),
                "success_percent": round(100.0 * (evaluated - failed) / evaluated, 2) if evaluated else (100.0 if all(e.passed for e in group) else 0.0),
                "evaluated_rules": evaluated,
                "failed_rules": failed,
                "blocking_failures": sum(int(_number(e.metadata, "blocking_failures") or (1 if e.blocking else 0)) for e in group),
                "row_count": int(max(rows_checked)) if rows_checked else None,
                "failed_columns": ", ".join(columns),
                "failed_checks": ", ".join(sorted({e.check for e in group if not e.passed})),
            }
        )
    rows.sort(key=lambda row: (row["checked_at"], order[(row["dataset"], row["run_id"])], row["dataset"]))
    return rows


def report_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)


@dataclass(frozen=True)
class DatasetQuality:
    """A dataset's line on the quality page: its latest run and how its last runs went."""

    dataset: str
    title: str
    organization: str
    status: str
    checked_at: datetime
    success_percent: float
    failed_columns: str
    trend: list[float]
    statuses: list[str]


def latest_by_dataset(rows: list[dict[str, Any]]) -> list[DatasetQuality]:
    """Each dataset's latest state and trend, worst first (blocked, then warnings), then by title.

    `rows` are in `report_rows`'s order; runs checked in the same second keep it.
    """
    history: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: r["checked_at"]):
        history.setdefault(row["dataset"], []).append(row)
    lines = []
    for dataset, runs in history.items():
        last = runs[-1]
        recent = runs[-TREND_RUNS:]
        lines.append(
            DatasetQuality(
                dataset=dataset,
                title=last["title"],
                organization=last["organization"],
                status=last["status"],
                checked_at=last["checked_at"],
                success_percent=last["success_percent"],
                failed_columns=last["failed_columns"],
                trend=[r["success_percent"] for r in recent],
                statuses=[r["status"] for r in recent],
            )
        )
    lines.sort(key=lambda line: (-_RANK[line.status], line.title.lower()))
    return lines
