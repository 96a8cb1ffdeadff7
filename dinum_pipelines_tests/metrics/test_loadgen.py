"""The load generator's record is exactly what the catalog logged, bots included."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from dinum_pipelines.catalog import Publisher, RunningCatalog
from dinum_pipelines.lib.metrics.usage import day_bounds
from dinum_pipelines.metrics_loadgen import API_KEY_ENV, main
from dinum_pipelines_tests.catalog.conftest import Api
from dinum_pipelines_tests.metrics.conftest import publish_sample_datasets


def test_the_cli_record_matches_the_catalog_log(
    catalog: RunningCatalog, api: Api, admin_api: Api, publisher: Publisher, sysadmin: Publisher,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    datasets = publish_sample_datasets(api, publisher)
    with pytest.raises(SystemExit):
        main(["--catalog", catalog.url, "--days", "1", "--end", "2026-11-02"])  # no key in the environment
    monkeypatch.setenv(API_KEY_ENV, sysadmin.token)
    record_file = tmp_path / "usage.json"
    args = ["--catalog", catalog.url, "--days", "2", "--end", "2026-11-02", "--seed", "3", "--record", str(record_file)]
    args += [arg for dataset in datasets for arg in ("--dataset", dataset["slug"])]
    assert main(args) == 0
    assert sysadmin.token not in capsys.readouterr().out
    record = json.loads(record_file.read_text(encoding="utf-8"))
    assert record["refused"] == 0 and {row["day"] for row in record["events"]} == {"2026-11-01", "2026-11-02"}

    generated: Counter[tuple[str | None, ...]] = Counter()
    for row in record["events"]:
        generated[(row["day"], row["kind"], row["channel"], row["dataset_id"], row["resource_id"] or None)] += row["count"]
    logged: Counter[tuple[str | None, ...]] = Counter()
    for day in (date(2026, 11, 1), date(2026, 11, 2)):
        start, end = day_bounds(day)
        response = admin_api.get("/events/", params={"since": start.isoformat(), "until": end.isoformat()})
        for event in csv.DictReader(io.StringIO(response.text)):
            logged[(day.isoformat(), event["kind"], event["channel"], event["dataset_id"], event["resource_id"] or None)] += 1
    assert logged == generated and sum(logged.values()) == sum(row["count"] for row in record["events"]) > 0
