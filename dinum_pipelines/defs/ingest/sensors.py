"""Source-change sensor and frequency schedules: runs start when a source changes, or on its rhythm.

One sensor covers every dataset: each tick sends a conditional HEAD per source and requests a
run of the dataset's job only for those that changed. The run key carries the version the
server announced, so the same change never launches two runs.
"""

import dagster as dg

from dinum_pipelines.defs.keys import job_name
from dinum_pipelines.defs.resources import DataFolder, SourceHttp
from dinum_pipelines.lib.freshness import cron_for_frequency, probe_source
from dinum_pipelines.lib.registry import DatasetSpec

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


def build_frequency_schedules(registry: dict[str, DatasetSpec], jobs: dict) -> list[dg.ScheduleDefinition]:
    """One schedule per dataset with a regular frequency, on its udata rhythm (Paris time)."""
    schedules = []
    for slug, spec in registry.items():
        cron = cron_for_frequency(spec.frequency)
        if cron is None:
            continue
        schedules.append(
            dg.ScheduleDefinition(
                name=f"{slug}_schedule",
                job=jobs[slug],
                cron_schedule=cron,
                execution_timezone="Europe/Paris",
                description=f"{spec.title}: declared frequency {spec.frequency!r}.",
                default_status=dg.DefaultScheduleStatus.STOPPED,
            )
        )
    return schedules
