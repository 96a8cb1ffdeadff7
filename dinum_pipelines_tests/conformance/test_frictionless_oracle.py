"""Our conformance report against frictionless 5 on every real schema-and-data pair.

For each pair of `../shared/data/real/` (conformance/ included), frictionless validates the file
with columns matched by name, and our counts per (code, field), seen through the deviations table
(`deviations.py`), must equal its counts. The comparison is printed as a table. The same pairs are
validated again with the fast tier off (the reference rules alone) and must give the same faults.
"""

from __future__ import annotations

import json

import pytest

from dinum_pipelines.lib.conformance import parse_schema
from dinum_pipelines_tests.conformance import real_pairs
from dinum_pipelines_tests.conformance.deviations import DEVIATIONS, frictionless_refused_duplicates, frictionless_view

pytest.importorskip("frictionless")

_ROWS: list[tuple[str, int, int, int, str]] = []


def _compare(name: str, report, schema, frictionless) -> None:
    expected, flat = real_pairs.frictionless_counts(frictionless)
    seen = frictionless_view(report, schema)
    if frictionless_refused_duplicates(flat):
        assert any(fault.code == "duplicate-label" for fault in report.faults)
        expected = seen  # frictionless stopped at the header; nothing else to compare
    _ROWS.append((name, report.rows, len(report.faults), sum(expected.values()), "equal" if seen == expected else "DIFFERENT"))
    differences = {key: (seen.get(key, 0), expected.get(key, 0)) for key in set(seen) | set(expected) if seen.get(key, 0) != expected.get(key, 0)}
    assert not differences, f"{name}: (code, field): (ours seen as frictionless, frictionless) {differences}"


@pytest.mark.parametrize("pair", real_pairs.PAIRS, ids=lambda pair: pair.id)
def test_counts_equal_frictionless(pair):
    document = json.loads(pair.schema.read_bytes())
    report = real_pairs.ours(pair)
    _compare(pair.id, report, parse_schema(document), real_pairs.frictionless_report(pair.data, document))


@pytest.mark.parametrize("package", real_pairs.PACKAGES, ids=lambda path: path.name)
def test_packages_equal_frictionless(package):
    reports = real_pairs.ours_package(package)
    theirs = real_pairs.frictionless_package_reports(package)
    documents = {name: document for name, document, _ in real_pairs.package_resources(package)}
    for name, report in reports.items():
        _compare(f"{package.name}:{name}", report, parse_schema(documents[name]), theirs[name])


@pytest.mark.parametrize("pair", real_pairs.PAIRS, ids=lambda pair: pair.id)
def test_fast_tier_changes_nothing(pair):
    fast, reference = real_pairs.ours(pair), real_pairs.ours(pair, fast=False)
    assert [fault.to_dict() for fault in fast.faults] == [fault.to_dict() for fault in reference.faults]


def test_valid_examples_have_no_fault():
    for pair in real_pairs.PAIRS:
        if "valide" in pair.data.name and "invalide" not in pair.data.name and "Schema_V0.1" not in pair.schema.name:
            report = real_pairs.ours(pair)
            assert report.valid, f"{pair.id}: {[fault.to_dict() for fault in report.faults[:5]]}"
    for package in real_pairs.PACKAGES:
        for name, report in real_pairs.ours_package(package).items():
            assert report.valid, f"{package.name}:{name}: {[fault.to_dict() for fault in report.faults[:5]]}"


def test_every_data_file_is_paired():
    paired = {pair.data for pair in real_pairs.PAIRS}
    paired |= {data for package in real_pairs.PACKAGES for _, _, data in real_pairs.package_resources(package)}
    for folder in (real_pairs.REAL, real_pairs.CONFORMANCE):
        for path in folder.iterdir():
            schema_family = any(folder.glob(f"{path.name.split('__')[0]}__*schema*.json"))
            if path.suffix in (".csv", ".xlsx") and schema_family:
                assert path in paired, f"{path.name} has a schema but is in no pair"


def test_print_comparison_table(capsys):
    """The table of the whole comparison (runs last in this module: pytest keeps file order)."""
    if not _ROWS:
        pytest.skip("no comparison ran")
    width = max(len(row[0]) for row in _ROWS)
    lines = [f"{'file':{width}}  {'rows':>6}  {'ours':>6}  {'frictionless':>12}  verdict"]
    lines += [f"{name:{width}}  {rows:>6}  {ours:>6}  {theirs:>12}  {verdict}" for name, rows, ours, theirs, verdict in _ROWS]
    lines.append("")
    lines.append("Deliberate deviations (deviations.py):")
    lines += [f"- {deviation.name}: {deviation.reason}" for deviation in DEVIATIONS]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert all(row[4] == "equal" for row in _ROWS)
