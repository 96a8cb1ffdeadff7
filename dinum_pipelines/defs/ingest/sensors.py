"""The source-change sensor: a dataset's run starts when its source changes (its rhythm is an
automation condition, defs/automation.py).

One sensor covers every dataset: each tick sends a conditional HEAD per source and requests a
run of the dataset's job only for those that changed. The run key carries the version the
server announced, so the same change never launches two runs.
"""

import dagster as dg

from dinum_pipelines.defs.keys import job_name
from dinum_pipelines.defs.resources import DataFolder, SourceHttp
from dinum_pipelines.lib.monitoring.freshness import probe_source
from dinum_pipelines.lib.declare.registry import DatasetSpec

SENSOR_INTERVAL_SECONDS = 15 * 60


def build_source_change_sensor(registry: dict[str, DatasetSpec], jobs: list) -> dg.SensorDefinition:
    @dg.sensor(
        name="source_change_sensor",
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        jobs=jobs,
        description="Conditional HEAD on every source; runs the job of each dataset whose source changed.",
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def source_change_sensor(context: dg.SensorEvaluationContext, data_folder: DataFolder, source_http: SourceHttp):
        store = data_folder.layout().raw_store()
        session = source_http.session()
        requests_ = []
        for slug, spec in registry.items():
            probe = probe_source(session, spec.source.resolved_url, store.latest(slug))
            context.log.info(f"{slug}: {'changed' if probe.changed else 'unchanged'}: {probe.reason}")
            if probe.changed:
                requests_.append(
                    dg.RunRequest(
                        job_name=job_name(slug),
                        run_key=f"{slug}:{probe.version_token}" if probe.version_token else None,
                        tags={"dinum/trigger": "source_change", "dinum/reason": probe.reason[:200]},
                    )
                )
        if not requests_:
            return dg.SkipReason("no source changed")
        return requests_

    return source_change_sensor

