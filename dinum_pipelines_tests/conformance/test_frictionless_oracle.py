"""Our conformance report against frictionless 5 on every real schema-and-data pair.

For each pair of `../shared/data/real/` (conformance/ included), frictionless validates the file
with columns matched by name, and our counts per (code, field), seen through the deviations table
(`deviations.py`), must equal its counts. The comparison is printed as a table. The same pairs are
validated again with the fast tier off (the reference rules alone) and must give the same faults.
frictionless is in the test extra: it is imported, never skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

import frictionless  # noqa: F401 - the oracle: a test dependency, never skipped
import pytest

from dinum_pipelines.lib.conformance import parse_schema
from dinum_pipelines.lib.conformance.report import ConformanceReport
from dinum_pipelines_tests.conformance import real_pairs
from dinum_pipelines_tests.conformance.deviations import DEVIATIONS, frictionless_refused_duplicates, frictionless_view


@dataclass(frozen=True)
class Comparison:
    """One file's report against frictionless': the figures the table prints, and what differs."""

    name: str
    rows: int
    ours: int
    theirs: int
    # (code, field) -> (ours seen as frictionless, frictionless); empty when equal.
    differences: dict


def _compare(name: str, report: ConformanceReport, document: dict, frictionless_report) -> Comparison:
    expected, flat = real_pairs.frictionless_counts(frictionless_report)
    seen = frictionless_view(report, parse_schema(document))
    if frictionless_refused_duplicates(flat):
        assert any(fault.code == "duplicate-label" for fault in report.faults)
        expected = seen  # frictionless stopped at the header; nothing else to compare
    differences = {key: (seen.get(key, 0), expected.get(key, 0)) for key in set(seen) | set(expected) if seen.get(key, 0) != expected.get(key, 0)}
    return Comparison(name, report.rows, len(report.faults), sum(expected.values()), differences)


# Each file is validated once by each side, whichever test asks first.
ours = cache(real_pairs.ours)
ours_package = cache(real_pairs.ours_package)


@cache
def pair_comparison(pair: real_pairs.Pair) -> Comparison:
    document = json.loads(pair.schema.read_bytes())
    return _compare(pair.id, ours(pair), document, real_pairs.frictionless_report(pair.data, document))


@cache
def package_comparisons(package) -> list[Comparison]:
    theirs = real_pairs.frictionless_package_reports(package)
    documents = {name: document for name, document, _ in real_pairs.package_resources(package)}
    return [
        _compare(f"{package.name}:{name}", report, documents[name], theirs[name]) for name, report in ours_package(package).items()
    ]


@pytest.mark.parametrize("pair", real_pairs.PAIRS, ids=lambda pair: pair.id)
def test_counts_equal_frictionless(pair):
    comparison = pair_comparison(pair)
    assert not comparison.differences, f"{pair.id}: (code, field): (ours seen as frictionless, frictionless) {comparison.differences}"


@pytest.mark.parametrize("package", real_pairs.PACKAGES, ids=lambda path: path.name)
def test_packages_equal_frictionless(package):
    for comparison in package_comparisons(package):
        assert not comparison.differences, f"{comparison.name}: (code, field): (ours, frictionless) {comparison.differences}"


@pytest.mark.parametrize("pair", real_pairs.PAIRS, ids=lambda pair: pair.id)
def test_fast_tier_changes_nothing(pair):
    fast, reference = ours(pair), real_pairs.ours(pair, fast=False)
    assert [fault.to_dict() for fault in fast.faults] == [fault.to_dict() for fault in reference.faults]


def test_valid_examples_have_no_fault():
    for pair in real_pairs.PAIRS:
        if "valide" in pair.data.name and "invalide" not in pair.data.name and "Schema_V0.1" not in pair.schema.name:
            report = ours(pair)
            assert report.valid, f"{pair.id}: {[fault.to_dict() for fault in report.faults[:5]]}"
    for package in real_pairs.PACKAGES:
        for name, report in ours_package(package).items():
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
    """The table of the whole comparison, every pair and every package resource."""
    rows = [pair_comparison(pair) for pair in real_pairs.PAIRS]
    rows += [comparison for package in real_pairs.PACKAGES for comparison in package_comparisons(package)]
    width = max(len(row.name) for row in rows)
    lines = [f"{'file':{width}}  {'rows':>6}  {'ours':>6}  {'frictionless':>12}  verdict"]
    lines += [
        f"{row.name:{width}}  {row.rows:>6}  {row.ours:>6}  {row.theirs:>12}  {'DIFFERENT' if row.differences else 'equal'}"
        for row in rows
    ]
    lines.append("")
    lines.append("Deliberate deviations (deviations.py):")
    lines += [f"- {deviation.name}: {deviation.reason}" for deviation in DEVIATIONS]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert not [row.name for row in rows if row.differences]
