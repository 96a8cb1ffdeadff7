"""One row per dataset and run from check evaluations; latest status and trend per dataset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dinum_pipelines.lib.quality.history import (
    BLOCKED,
    PASSED,
    TREND_RUNS,
    WARNING,
    CheckEvaluation,
    latest_by_dataset,
    report_rows,
    report_table,
)

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
DATASETS = {"ecoles": ("Écoles", "academie"), "bornes": ("Bornes", "agence")}


def evaluation(dataset, run_id, minutes, *, passed=True, blocking=False, check="quality_rules", **metadata):
    return CheckEvaluation(
        dataset=dataset, check=check, run_id=run_id, evaluated_at=T0 + timedelta(minutes=minutes),
        passed=passed, blocking=blocking, metadata=metadata,
    )


def test_checks_of_one_run_make_one_row_with_the_worst_status_and_summed_rules():
    rows = report_rows(
        [
            evaluation("ecoles", "r1", 1, evaluated_rules=20, failed_rules=0, row_count=480),
            evaluation("ecoles", "r1", 2, check="personal_data", passed=False, blocking=True,
                       evaluated_rules=4, failed_rules=1, blocking_failures=1, failed_columns="email", row_count=480),
            evaluation("ecoles", "r1", 3, check="coherence", passed=False, evaluated_rules=3, failed_rules=1,
                       failed_columns="email, effectif"),
        ],
        DATASETS,
    )
    (row,) = rows
    assert row["status"] == BLOCKED and row["title"] == "Écoles" and row["organization"] == "academie"
    assert (row["evaluated_rules"], row["failed_rules"], row["blocking_failures"]) == (27, 2, 1)
    assert row["success_percent"] == round(100 * 25 / 27, 2)
    assert row["failed_columns"] == "effectif, email" and row["failed_checks"] == "coherence, personal_data"
    assert row["checked_at"] == T0 + timedelta(minutes=3) and row["row_count"] == 480
    table = report_table(rows)
    assert table.num_rows == 1 and str(table.schema.field("checked_at").type) == "timestamp[s, tz=UTC]"


def test_a_warning_only_run_is_a_warning_and_an_evaluation_without_figures_still_counts():
    rows = report_rows([evaluation("bornes", "r1", 0, passed=False), evaluation("bornes", "r2", 5)], DATASETS)
    assert [(r["run_id"], r["status"], r["success_percent"], r["failed_rules"]) for r in rows] == [
        ("r1", WARNING, 0.0, 1), ("r2", PASSED, 100.0, 0),
    ]


def test_latest_state_and_trend_worst_first():
    evaluations = [evaluation("bornes", f"b{i}", i, evaluated_rules=10, failed_rules=i % 2) for i in range(TREND_RUNS + 3)]
    evaluations += [
        evaluation("ecoles", "e1", 0, evaluated_rules=10, failed_rules=0),
        evaluation("ecoles", "e2", 30, passed=False, blocking=True, evaluated_rules=10, failed_rules=2, failed_columns="code_commune"),
    ]
    lines = latest_by_dataset(report_rows(evaluations, DATASETS))
    assert [line.dataset for line in lines] == ["ecoles", "bornes"]  # blocked first
    ecoles, bornes = lines
    assert (ecoles.status, ecoles.success_percent, ecoles.trend, ecoles.failed_columns) == (BLOCKED, 80.0, [100.0, 80.0], "code_commune")
    assert len(bornes.trend) == TREND_RUNS and bornes.trend[-1] == 100.0 and bornes.statuses[-1] == PASSED


def test_runs_checked_in_the_same_second_keep_the_storage_order():
    # Newest first, as Dagster's history returns them, and stored to the second.
    later = evaluation("ecoles", "r2", 0, evaluated_rules=3, failed_rules=0)
    earlier = evaluation("ecoles", "r1", 0, passed=False, blocking=True, evaluated_rules=3, failed_rules=1)
    rows = report_rows(
        [CheckEvaluation(**{**vars(later), "sequence": 9}), CheckEvaluation(**{**vars(earlier), "sequence": 4})], DATASETS
    )
    assert [row["run_id"] for row in rows] == ["r1", "r2"]
    (line,) = latest_by_dataset(rows)
    assert line.status == PASSED and line.statuses == [BLOCKED, PASSED]
