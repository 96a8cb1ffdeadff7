"""udata's nine quality criteria, one at a time, and the score they add up to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dinum_pipelines.catalog.quality_score import CRITERIA, quality

NOW = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
LONG_DESCRIPTION = "x" * 101


def bare(**fields: Any) -> dict[str, Any]:
    """A dataset meeting no criterion, with `fields` on top."""
    return {"description": "", "frequency": "unknown", "last_update": NOW, "resources": [], **fields}


def criteria_met(dataset: dict[str, Any]) -> set[str]:
    result = quality(dataset, NOW)
    return {name for name in CRITERIA if result[name]}


def test_a_bare_dataset_meets_nothing() -> None:
    result = quality(bare(), NOW)
    assert set(result) == {*CRITERIA, "has_resources", "score"}
    assert all(result[name] is False for name in CRITERIA)
    assert (result["has_resources"], result["score"]) == (False, 0)


@pytest.mark.parametrize(
    ("license_id", "met"), [("lov2", True), ("odc-odbl", True), ("notspecified", False), (None, False)]
)
def test_license(license_id: str | None, met: bool) -> None:
    assert ("license" in criteria_met(bare(license=license_id))) is met


@pytest.mark.parametrize(
    ("coverage", "met"), [({"start": "2020-01-01", "end": None}, True), ({"start": None}, False), (None, False)]
)
def test_temporal_coverage(coverage: Any, met: bool) -> None:
    assert ("temporal_coverage" in criteria_met(bare(temporal_coverage=coverage))) is met


@pytest.mark.parametrize(
    ("spatial", "met"),
    [
        ({"zones": ["country:fr"], "granularity": None, "geom": None}, True),
        ({"zones": [], "granularity": "fr:commune", "geom": None}, True),
        ({"zones": [], "granularity": None, "geom": None}, False),
        (None, False),
    ],
)
def test_spatial(spatial: Any, met: bool) -> None:
    assert ("spatial" in criteria_met(bare(spatial=spatial))) is met


@pytest.mark.parametrize(("frequency", "met"), [("daily", True), ("punctual", True), ("unknown", False), (None, False)])
def test_update_frequency(frequency: str | None, met: bool) -> None:
    assert ("update_frequency" in criteria_met(bare(frequency=frequency))) is met


@pytest.mark.parametrize(
    ("frequency", "age", "met"),
    [
        ("daily", timedelta(hours=1), True),
        ("daily", timedelta(days=1, hours=23), True),  # due a day ago: within udata's one-day grace
        ("daily", timedelta(days=2, hours=1), False),
        ("monthly", timedelta(days=31), True),
        ("monthly", timedelta(days=33), False),
        ("punctual", timedelta(days=3000), True),  # no rhythm to keep
        ("irregular", timedelta(days=3000), True),
        ("continuous", timedelta(days=3000), True),
        ("unknown", timedelta(0), False),
        ("notPlanned", timedelta(0), False),
    ],
)
def test_update_fulfilled_in_time(frequency: str, age: timedelta, met: bool) -> None:
    dataset = bare(frequency=frequency, last_update=NOW - age)
    assert ("update_fulfilled_in_time" in criteria_met(dataset)) is met


@pytest.mark.parametrize(("length", "met"), [(100, False), (101, True), (0, False)])
def test_dataset_description_quality(length: int, met: bool) -> None:
    assert ("dataset_description_quality" in criteria_met(bare(description="é" * length))) is met


@pytest.mark.parametrize(
    ("formats", "met"),
    [(["csv"], True), (["pdf", "CSV"], True), (["pdf", "XLSX", "docx"], False), ([None], False), ([], False)],
)
def test_has_open_format(formats: list[str | None], met: bool) -> None:
    dataset = bare(resources=[{"format": format_} for format_ in formats])
    assert ("has_open_format" in criteria_met(dataset)) is met


@pytest.mark.parametrize(
    ("checks", "met"),
    [([True, True], True), ([None, True], True), ([True, False], False), ([], False)],
)
def test_all_resources_available(checks: list[bool | None], met: bool) -> None:
    resources = [{"extras": {} if check is None else {"check:available": check}} for check in checks]
    assert ("all_resources_available" in criteria_met(bare(resources=resources))) is met


@pytest.mark.parametrize(
    ("resources", "met"),
    [
        ([{"type": "main"}, {"type": "documentation"}], True),
        ([{"type": "main", "description": "Une ligne par commune."}], True),
        ([{"type": "main", "description": ""}], False),
        ([], False),
    ],
)
def test_resources_documentation(resources: list[dict[str, Any]], met: bool) -> None:
    assert ("resources_documentation" in criteria_met(bare(resources=resources))) is met


def test_score_is_the_share_of_the_nine_criteria() -> None:
    resources = [{"format": "csv", "type": "main", "description": "Données", "extras": {"check:available": True}}]
    complete = bare(
        license="lov2", temporal_coverage={"start": "2020-01-01"}, spatial={"zones": ["country:fr"]},
        frequency="daily", description=LONG_DESCRIPTION, resources=resources,
    )
    assert quality(complete, NOW)["score"] == 1
    assert quality({**complete, "license": "notspecified"}, NOW)["score"] == pytest.approx(8 / 9)
    assert quality({**complete, "last_update": NOW - timedelta(days=5)}, NOW)["score"] == pytest.approx(8 / 9)
    assert quality(bare(license="lov2", frequency="punctual"), NOW)["score"] == pytest.approx(3 / 9)
