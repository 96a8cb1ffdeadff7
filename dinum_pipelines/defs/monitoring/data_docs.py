"""The Data Docs asset: one Great Expectations site for every dataset, rebuilt after checks run.

Building runs in the `gx_docs` pool (one at a time); the site is also swapped in atomically
(see lib/quality/data_docs.py), so even two builds at once leave a complete site.
"""

import dagster as dg

from dinum_pipelines.defs.resources import DataFolder
from dinum_pipelines.lib.quality.data_docs import archived_validations, build_site
from dinum_pipelines.lib.declare.registry import DatasetSpec

DATA_DOCS_KEY = dg.AssetKey(["monitoring", "data_docs"])
DATA_DOCS_POOL = "gx_docs"


def build_data_docs_asset(registry: dict[str, DatasetSpec]) -> dg.AssetsDefinition:
    @dg.asset(
        key=DATA_DOCS_KEY,
        group_name="monitoring",
        kinds={"great_expectations", "html"},
        pool=DATA_DOCS_POOL,
        description="Great Expectations Data Docs of every dataset's recent validations, built in one place.",
    )
    def data_docs(context: dg.AssetExecutionContext, data_folder: DataFolder) -> dg.MaterializeResult:
        layout = data_folder.layout()
        validations = archived_validations((slug, layout.clean_files(slug).directory) for slug in registry)
        index = build_site(validations, layout.data_docs_site)
        context.log.info(f"Data Docs: {index}")
        return dg.MaterializeResult(
            metadata={
                "index": dg.MetadataValue.path(str(index)),
                "datasets": dg.MetadataValue.int(len(validations)),
                "validations": dg.MetadataValue.int(sum(len(results) for results in validations.values())),
            }
        )

    return data_docs
