"""The source-change sensor asks each server with a conditional HEAD and runs only what changed."""

import dagster as dg
import pytest

from dinum_pipelines.defs.chains import build_dataset_defs
from dinum_pipelines.defs.keys import job_name
from dinum_pipelines.defs.resources import DataFolder, SourceHttp
from dinum_pipelines.demo.server import serve_administrations
from dinum_pipelines.lib.storage.layout import DataLayout
from dinum_pipelines.lib.pipeline import ingest
from dinum_pipelines.lib.ingest.http import make_session
from dinum_pipelines.lib.declare.registry import load_registry


@pytest.fixture
def admin(monkeypatch):
    with serve_administrations() as running:
        monkeypatch.setenv("DINUM_DEMO_ADMIN_URL", running.url)
        yield running


def tick(sensor, tmp_path):
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance,
            resources={"data_folder": DataFolder(root=str(tmp_path)), "source_http": SourceHttp(retries=0)},
        )
        result = sensor(context)
    if isinstance(result, dg.SkipReason):
        return []
    return list(result)


def test_sensor_requests_runs_only_for_changed_sources(admin, tmp_path):
    registry = load_registry()
    sensor = next(iter(build_dataset_defs(registry).sensors))
    first = tick(sensor, tmp_path)
    assert sorted(r.job_name for r in first) == sorted(job_name(slug) for slug in registry)

    layout = DataLayout(tmp_path)
    for spec in registry.values():
        ingest(spec, layout, make_session())
    assert tick(sensor, tmp_path) == []  # every server answers 304 to our validators

    path = next(p for p in admin.paths if "subventions" in p)
    admin.publish(path, admin.get(path).content + b"\r\n")
    changed = tick(sensor, tmp_path)
    assert [r.job_name for r in changed] == [job_name("subventions_associations")]
    assert changed[0].run_key.startswith("subventions_associations:")
    assert tick(sensor, tmp_path)[0].run_key == changed[0].run_key  # same change, same key: one run

