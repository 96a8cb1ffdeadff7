"""The published asset of a dataset: its clean files and metadata in the udata catalog."""


import dagster as dg

from dinum_pipelines.defs.automation import PUBLISH_WHEN_CHECKED
from dinum_pipelines.defs.keys import clean_key, publication_pool, published_key
from dinum_pipelines.defs.monitoring.freshness import freshness_policy
from dinum_pipelines.defs.resources import Catalog, DataFolder
from dinum_pipelines.lib.pipeline import publish_clean_files
from dinum_pipelines.lib.publish.publishing import file_digest
from dinum_pipelines.lib.declare.registry import DatasetSpec


def build_published_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=published_key(spec.slug),
        deps=[clean_key(spec.slug)],
        group_name=spec.slug,
        kinds={"udata"},
        owners=spec.owners or None,
        # One publication of a dataset at a time, whatever the number of runs: two at once would
        # both create the dataset or both upload a file (publishing converges anyway, but the
        # pool's limit, 1 in the instance's dagster.yaml, keeps that from happening).
        pool=publication_pool(spec.slug),
        description=f"{spec.title}: CSV and Parquet published to the catalog, with the dataset's metadata.",
        automation_condition=PUBLISH_WHEN_CHECKED,
        # Stale (WARN, then FAIL) by udata's "updated on time" rule: defs/monitoring/freshness.py.
        freshness_policy=freshness_policy(spec.frequency),
    )
    def published(context: dg.AssetExecutionContext, data_folder: DataFolder, catalog: Catalog) -> dg.MaterializeResult:
        context.log.info(f"{spec.slug}: publishing to the catalog at {catalog.base_url}")
        with data_folder.dataset_layout(spec.slug) as layout:
            result = publish_clean_files(spec, layout, catalog.client())
            files = layout.clean_files(spec.slug).published_files()
            digests = {f"{role}_sha256": file_digest(path, "sha256") for role, path in files.items()}
        for action in result.actions:
            context.log.info(f"{spec.slug}: {action}")
        metadata = {
            "dataset_id": result.dataset_id,
            "changed": dg.MetadataValue.bool(result.changed),
            "actions": dg.MetadataValue.json(result.actions),
            **{f"{role}_resource_id": rid for role, rid in result.resource_ids.items()},
            **digests,
        }
        if result.dataset_url:
            metadata["dataset_page"] = dg.MetadataValue.url(result.dataset_url)
        if result.changes is not None:  # what the catalog shows in the dataset's history
            metadata["changes"] = dg.MetadataValue.json(result.changes)
        return dg.MaterializeResult(metadata=metadata)

    return published
