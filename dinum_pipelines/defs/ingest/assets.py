"""The raw asset of a dataset: the administration's file, downloaded only when it changed."""


import dagster as dg

from dinum_pipelines.defs.keys import raw_key
from dinum_pipelines.defs.resources import DataFolder, SourceHttp
from dinum_pipelines.lib.pipeline import ingest, unfinished_publication
from dinum_pipelines.lib.registry import DatasetSpec


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
    )
    def raw(context: dg.AssetExecutionContext, config: IngestConfig, data_folder: DataFolder, source_http: SourceHttp):
        layout = data_folder.layout()
        outcome = ingest(spec, layout, source_http.session(), force=config.force)
        unfinished = unfinished_publication(spec, layout) if outcome.unchanged_reason else None
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
