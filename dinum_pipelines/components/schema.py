"""The JSON schema of a dataset's defs.yaml, committed for editors: `python -m dinum_pipelines.components.schema`.

`dg utils generate-component-schema` only lists component types installed through a package entry
point; the project's types are found through `[tool.dg.project] registry_modules`, which that
command does not read. So the schema of our component files is written here with the very function
dg uses, from the same module list, into `dataset.schema.json`; every defs.yaml names it on its first
line (`# yaml-language-server: $schema=...`) for YAML language servers (VS Code, Neovim, JetBrains).
A test fails when the committed file is not what this writes.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from dinum_pipelines.lib.declare.registry import COMPONENT_SCHEMA_FILE

REGISTRY_MODULES = ("dinum_pipelines.components",)


def component_file_schema() -> dict[str, Any]:
    """The schema of a component file naming one of the project's component types."""
    from dagster.components.list import list_all_components_schema

    return list_all_components_schema(entry_points=False, extra_modules=REGISTRY_MODULES)


def schema_text() -> str:
    return json.dumps(component_file_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> int:
    COMPONENT_SCHEMA_FILE.write_text(schema_text(), encoding="utf-8")
    print(f"written: {COMPONENT_SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
