"""The real Table Schemas of ../shared/data/real and their examples: the valid example passes, the
invalid one fails, and the check's metadata names the failing fields.

Files are read in place (never copied into the project): the schema through the registry's
`schema.path`, the example through the same parser the pipeline uses. Both engines run and must
agree (see helpers.validate_both).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from dinum_pipelines.defs.quality.checks import check_result
from dinum_pipelines.lib.clean.cleaning import clean_table
from dinum_pipelines.lib.clean.parsing import decimal_separator, read_source
from dinum_pipelines.lib.declare.registry import parse_dataset_file
from dinum_pipelines.lib.clean.tables import to_arrow
from dinum_pipelines.lib.declare.tableschema import json_schema_columns
from dinum_pipelines_tests.quality.helpers import BASE, dataset, validate_both

SCHEMAS = {
    # schema file prefix -> fields the invalid example must fail on (SOURCES.md says why)
    "schema-lieux-covoiturage": {"date_maj"},
    "schema-stationnement": {"id", "tarif_pmr"},
    "schema-comptage-mobilites-channel": {"channel_id", "mobility_type"},
}


def _registry_file(tmp_path: Path, schema: Path, slug: str) -> Path:
    text = textwrap.dedent(
        f"""\
        slug: {slug}
        title: {BASE["title"]}
        description: {BASE["description"]}
        organization: {{slug: etalab, name: Etalab}}
        source: {{url: "http://127.0.0.1:9/{slug}.csv", format: csv}}
        license: lov2
        frequency: irregular
        schema: {{name: etalab/{slug}, path: "{schema}"}}
        # Every row as the file has it: a repeated key is an error the schema must catch.
        on_duplicate_key: keep_all
        """
    )
    path = tmp_path / f"{slug}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _validate_example(spec, example: Path, tmp_path: Path):
    text_table, _ = read_source(example, spec.source)
    frame, cleaning = clean_table(text_table, spec, decimal_separator(spec.source))
    report = validate_both(to_arrow(frame, spec), spec, cleaning)
    return report, check_result(report, str(tmp_path / "quality.json"))


@pytest.mark.parametrize("prefix", sorted(SCHEMAS))
def test_valid_example_passes_and_invalid_one_fails_naming_its_fields(real_file, tmp_path, prefix):
    spec = parse_dataset_file(_registry_file(tmp_path, real_file(f"{prefix}__schema.json"), prefix.replace("-", "_")))

    report, result = _validate_example(spec, real_file(f"{prefix}__exemple-valide.csv"), tmp_path)
    assert report.passed and result.passed, [o.describe() for o in report.blocking_failures + report.warnings]

    report, result = _validate_example(spec, real_file(f"{prefix}__exemple-invalide.csv"), tmp_path)
    assert not result.passed and result.severity.value == "ERROR"
    assert set(result.metadata["blocking_columns"].value.split(", ")) == SCHEMAS[prefix]
    assert {f["field"] for f in result.metadata["failed_expectations"].value} >= SCHEMAS[prefix]


def test_zfe_geojson_example_passes_and_a_broken_copy_fails(real_file, tmp_path):
    schema = json.loads(real_file("schema-zfe__schema.json").read_text(encoding="utf-8"))
    properties = schema["properties"]["features"]["items"]["properties"]["properties"]
    zone = json.loads(real_file("schema-zfe__exemple-valide-zone.geojson").read_text(encoding="utf-8"))
    present = set(zone["features"][0]["properties"])
    # An optional property the feature does not have (url_site_information) is not a column of it.
    columns = [
        column
        for column in json_schema_columns(properties["properties"], properties.get("required", []))
        if column.get("required") or column["name"] in present
    ]
    spec = dataset(columns, source={"url": "http://127.0.0.1:9/zfe.geojson", "format": "geojson"})

    report, result = _validate_example(spec, real_file("schema-zfe__exemple-valide-zone.geojson"), tmp_path)
    assert report.passed, [o.describe() for o in report.blocking_failures]
    # The feature has one property the schema does not declare: published, with a warning.
    assert [(o.rule, o.column) for o in report.warnings] == [("file_structure_extra_columns", "url_site")]

    # A generated invalid variant of the real zone (in the temporary folder): an unknown Crit'Air
    # class and a missing identifier.
    zone["features"][0]["properties"].update(vp_critair="V9", id=None)
    broken = tmp_path / "zone-invalide.geojson"
    broken.write_text(json.dumps(zone), encoding="utf-8")
    report, result = _validate_example(spec, broken, tmp_path)
    assert set(result.metadata["blocking_columns"].value.split(", ")) == {"id", "vp_critair"}
