"""The raw asset of a dataset: the administration's file, downloaded only when it changed."""

from datetime import UTC, datetime

import dagster as dg

from dinum_pipelines.defs.automation import DOWNLOAD_RETRY_POLICY, raw_automation
from dinum_pipelines.defs.keys import raw_key
from dinum_pipelines.defs.resources import DataFolder, SourceHttp
from dinum_pipelines.lib.ingest.http import FetchError
from dinum_pipelines.lib.pipeline import ingest, unfinished_publication
from dinum_pipelines.lib.storage.rawstore import RawVersion
from dinum_pipelines.lib.declare.registry import DatasetSpec


def stored_during_this_run(context: dg.AssetExecutionContext, version: RawVersion | None) -> bool:
    """Whether the latest raw version was stored after this run was created: by an earlier
    attempt of this very step that died before reporting it (its worker killed, in the Celery
    deployment, after the download was stored), or by another run of the dataset started in the
    meantime. For this run that version is new, not "unchanged": skipping it could leave it never
    cleaned nor published (when the other run is the dead attempt); publishing it twice converges."""
    if version is None:
        return False
    record = context.instance.get_run_record_by_id(context.run_id)
    if record is None:
        return False
    created = record.create_timestamp
    created = created if created.tzinfo else created.replace(tzinfo=UTC)
    return datetime.fromisoformat(version.fetched_at) >= created


class IngestConfig(dg.Config):
    force: bool = False
    """Download and rebuild even if the source has not changed (after a cleaning fix, say)."""


def build_raw_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    # output_required=False: when the source is unchanged the asset emits nothing, so cleaning,
    # checks and publication are skipped in that run, and the reason is logged as an observation;
    # unless the last version never reached the catalog (a run stopped mid-publication): then the
    # same version goes down the chain again.
    @dg.asset(
        key=raw_key(spec.slug),
        group_name=spec.slug,
        kinds={"http"},
        owners=spec.owners or None,
        description=f"{spec.title}: the file as served by {spec.organization.name} ({spec.source.url}).",
        output_required=False,
        # One pool per administration: its server never sees more downloads at once than the
        # pool's limit (dagster.yaml `concurrency.pools`), however many runs are in flight.
        pool=f"admin/{spec.organization.slug}",
        tags={"dinum/organization": spec.organization.slug},
        automation_condition=raw_automation(spec),
        retry_policy=DOWNLOAD_RETRY_POLICY,
    )
    def raw(context: dg.AssetExecutionContext, config: IngestConfig, data_folder: DataFolder, source_http: SourceHttp):
        with data_folder.dataset_layout(spec.slug) as layout:
            try:
                outcome = ingest(spec, layout, source_http.session(), force=config.force)
            except FetchError as error:
                if error.transient:
                    raise
                raise dg.Failure(str(error), allow_retries=False) from error
            unfinished = unfinished_publication(spec, layout) if outcome.unchanged_reason else None
        if outcome.unchanged_reason and unfinished is None and stored_during_this_run(context, outcome.version):
            unfinished = "an earlier attempt of this step stored it and stopped before reporting it"
        if outcome.unchanged_reason and unfinished is None:
            context.log.info(f"{spec.slug}: source unchanged, nothing to rebuild: {outcome.unchanged_reason}")
            context.log_event(
                dg.AssetObservation(asset_key=raw_key(spec.slug), metadata={"unchanged": outcome.unchanged_reason})
            )
            return
        if unfinished:
            context.log.warning(f"{spec.slug}: source unchanged ({outcome.unchanged_reason}), but {unfinished}: publishing it again")
        version = outcome.version
        yield dg.MaterializeResult(
            data_version=dg.DataVersion(version.sha256),
            metadata={
                "sha256": version.sha256,
                "size_bytes": dg.MetadataValue.int(version.size),
                "url": dg.MetadataValue.url(version.url),
                "path": dg.MetadataValue.path(version.path),
                "content_type": version.headers.get("content-type", ""),
                "etag": version.headers.get("etag", ""),
                "last_modified": version.headers.get("last-modified", ""),
            },
        )

    return raw
