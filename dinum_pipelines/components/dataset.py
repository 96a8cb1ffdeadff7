"""The `Dataset` component: one dataset of the registry, declared by its `defs.yaml`.

Each folder `dinum_pipelines/defs/datasets/<slug>/` holds a `defs.yaml` naming this type, the
declaration under `attributes:`. The component's model is the registry's (`DatasetDeclaration`:
DatasetSpec's JSON schema for `dg check yaml` and editors); loading goes through the registry's
parser, so a defs.yaml is judged by exactly the rules `dinum-validate` and the demo apply, with
errors naming the file and the field. The component builds that dataset's chain, check and job;
what watches every dataset at once (sensors, quality report) is built in definitions.py from
all the Dataset components of the tree.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import BaseModel

from dinum_pipelines.defs.chains import build_chain_defs
from dinum_pipelines.lib.declare.registry import (
    COMPONENT_FILE_NAME,
    DatasetDeclaration,
    DatasetSpec,
    component_file_text,
    parse_declaration,
)


class DatasetScaffolder(dg.Scaffolder):
    """`dg scaffold defs dinum_pipelines.components.Dataset datasets/<slug>`: a declaration to fill in.

    The human-only fields hold the registry's placeholder, refused at load until written;
    `dinum-pipelines add URL` writes the same file with the columns profiled from the data.
    """

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        from dinum_pipelines.lib.declare.scaffold import placeholder_declaration_text

        folder = Path(request.target_path)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / COMPONENT_FILE_NAME).write_text(
            component_file_text(placeholder_declaration_text(folder.name), folder), encoding="utf-8"
        )


@dg.scaffold_with(DatasetScaffolder)
class Dataset(dg.Component):
    """A dataset pulled from an administration, cleaned, checked and published to the catalog."""

    def __init__(self, spec: DatasetSpec):
        self.spec = spec

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return DatasetDeclaration

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> Dataset:
        declaration = attributes.root if isinstance(attributes, DatasetDeclaration) else {}
        return cls(parse_declaration(declaration, context.path / COMPONENT_FILE_NAME))

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return build_chain_defs(self.spec)
