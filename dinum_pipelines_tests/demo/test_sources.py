"""The demo registry files load, and their rules hold on the demo data except where designed to break.

The rules are evaluated here with plain pandas and `re`, independently of the pipeline's quality
code, so these tests say whether the demo data and its YAML agree, not whether the checks work.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from datetime import datetime
from typing import Any

import pandas as pd
import pytest

from dinum_pipelines.demo.administrations import DEMO_FILES, EFFECTIFS_BROKEN_ROWS, demo_file
from dinum_pipelines.lib.declare.registry import ColumnSpec, DatasetSpec, load_registry

Violations = Counter[tuple[str, str]]


@pytest.fixture(scope="module")
def registry() -> dict[str, DatasetSpec]:
    return load_registry()


def read_source(spec: DatasetSpec, content: bytes) -> pd.DataFrame:
    """The raw table, columns renamed to the registry's names, values as the file has them."""
    if spec.source.format == "csv":
        options = spec.source.csv
        frame = pd.read_csv(
            io.BytesIO(content), sep=options.delimiter, encoding=options.encoding, dtype=str, keep_default_na=False
        )
    else:
        records: Any = json.loads(content)
        for key in (spec.source.json_options.record_path or "").split("."):
            records = records[key] if key else records
        frame = pd.DataFrame.from_records(records)
    return frame.rename(columns={c.source_name: c.name for c in spec.columns})


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value)) or str(value).strip() == ""


def _parse(column: ColumnSpec, value: Any, decimal: str) -> Any:
    """The typed value, or raise ValueError: French numbers (`26 956,00`) and the declared date formats."""
    if column.type in ("integer", "number"):
        if isinstance(value, str):
            value = value.strip().replace(" ", "").replace("\u00a0", "")
            value = float(value.replace(",", ".") if decimal == "," else value)
        if column.type == "integer" and float(value) != int(value):
            raise ValueError(f"{value!r} is not an integer")
        return value
    if column.type == "date":
        for date_format in column.date_formats or ["%d/%m/%Y", "%Y-%m-%d"]:
            try:
                return datetime.strptime(str(value).strip(), date_format).date()
            except ValueError:
                continue
        raise ValueError(f"{value!r} matches none of {column.date_formats}")
    if column.type == "boolean" and not isinstance(value, bool):
        raise ValueError(f"{value!r} is not a boolean")
    return value


def rule_violations(spec: DatasetSpec, frame: pd.DataFrame) -> Violations:
    """Rows breaking each (column, rule) of the registry file."""
    violations: Violations = Counter()
    for column in spec.columns:
        if column.name not in frame:
            violations[column.name, "missing column"] = len(frame)
            continue
        present = [v for v in frame[column.name] if not _blank(v)]
        violations[column.name, "required"] = (len(frame) - len(present)) if column.required else 0
        if column.unique:
            violations[column.name, "unique"] = int(pd.Series(present).duplicated().sum())
        parsed = []
        for value in present:
            try:
                parsed.append(_parse(column, value, spec.source.csv.decimal))
            except ValueError:
                violations[column.name, "type"] += 1
        if column.pattern:
            # On the value as published: a padded code is a broken code.
            violations[column.name, "pattern"] = sum(not re.search(column.pattern, str(v)) for v in present)
        if column.enum:
            violations[column.name, "enum"] = sum(v not in column.enum for v in parsed)
        if column.minimum is not None:
            violations[column.name, "minimum"] = sum(v < column.minimum for v in parsed)
        if column.maximum is not None:
            violations[column.name, "maximum"] = sum(v > column.maximum for v in parsed)
    if spec.primary_key:
        violations["/".join(spec.primary_key), "primary_key"] = int(frame.duplicated(spec.primary_key).sum())
    return +violations  # drop the zero counts


def test_every_demo_file_has_a_registry_file_and_back(registry: dict[str, DatasetSpec]) -> None:
    assert set(registry) == {f.dataset for f in DEMO_FILES}
    for slug, spec in registry.items():
        assert spec.source.url.startswith("${DINUM_DEMO_ADMIN_URL:-http://127.0.0.1:8765}/")
        assert spec.source.resolved_url.endswith(demo_file(slug).path)
        assert spec.organization.slug == demo_file(slug).administration
        assert spec.license == "lov2"
        assert spec.primary_key and spec.spatial.zones == ["country:fr"]


def test_codes_are_strings(registry: dict[str, DatasetSpec]) -> None:
    for spec in registry.values():
        for column in spec.columns:
            if column.pattern and re.search(r"\\d\{5\}", column.pattern):
                assert column.type == "string", f"{spec.slug}.{column.name}"


# The demo file built to break its schema's shape (see administrations.fontaines_eau_csv).
FAULTY_SHAPE = "fontaines_eau"


def test_every_declared_column_is_in_the_file(registry: dict[str, DatasetSpec]) -> None:
    for slug, spec in registry.items():
        if slug == FAULTY_SHAPE:
            continue
        frame = read_source(spec, demo_file(slug).generate())
        assert [c.name for c in spec.columns] == list(frame.columns), slug


@pytest.mark.parametrize("slug", ["subventions_associations", "bornes_recharge"])
def test_clean_datasets_pass_all_their_rules(registry: dict[str, DatasetSpec], slug: str) -> None:
    spec = registry[slug]
    assert rule_violations(spec, read_source(spec, demo_file(slug).generate())) == Counter()


def test_effectifs_breaks_exactly_the_code_commune_pattern(registry: dict[str, DatasetSpec]) -> None:
    spec = registry["effectifs_ecoles"]
    frame = read_source(spec, demo_file("effectifs_ecoles").generate())
    assert rule_violations(spec, frame) == Counter({("code_commune", "pattern"): EFFECTIFS_BROKEN_ROWS})
    assert spec.column("code_commune").severity == "critical"  # so it blocks publication
    pattern = spec.column("code_commune").pattern or ""
    broken = [code for code in frame["code_commune"] if not re.search(pattern, code)]
    assert all(code.startswith("2C") for code in broken)
    assert len(frame) > 100 * EFFECTIFS_BROKEN_ROWS  # most rows are fine


def test_fontaines_breaks_its_schema_in_the_designed_ways_and_cleaning_fixes_all(registry, tmp_path) -> None:
    """Every fault the generator's docstring lists is in the conformance report, and nothing else;
    the clean table is complete and its quality check has warnings only."""
    from dinum_pipelines.lib.clean.cleaning import clean_table
    from dinum_pipelines.lib.conformance import parse_schema, validate_file
    from dinum_pipelines.lib.clean.parsing import decimal_separator
    from dinum_pipelines.lib.clean.parsing import read_source as read_text_table
    from dinum_pipelines.lib.quality import validate_dataset

    spec = registry[FAULTY_SHAPE]
    path = tmp_path / "fontaines-eau-potable.csv"
    path.write_bytes(demo_file(FAULTY_SHAPE).generate())
    report = validate_file(path, parse_schema(spec.table_schema.document), spec.source, path.name)
    rows = 36
    assert report.counts() == Counter(
        {
            ("bom-before-other-encoding", None): 1,
            ("label-case-or-accents", "code_insee"): 1,
            ("duplicate-label", "commune"): 1,
            ("extra-label", None): 1,
            ("missing-label", "gestionnaire"): 1,
            ("blank-row", None): 3,
            **{("type-error", name): rows for name in ("latitude", "longitude", "date_installation", "en_service")},
        }
    )
    text_table, _ = read_text_table(path, spec.source)
    cleaned, cleaning = clean_table(text_table, spec, decimal_separator(spec.source))
    assert len(cleaned) == rows and cleaning.issues == []
    assert cleaned["latitude"].notna().all() and cleaned["en_service"].notna().all()
    quality = validate_dataset(cleaned, spec, cleaning)
    assert quality.passed and quality.blocking_failures == []
    assert {o.rule for o in quality.warnings} == {
        "file_structure_missing_columns", "file_structure_header_spelling", "file_structure_extra_columns",
        "file_structure_duplicate_headers", "file_structure_blank_rows",
    }
