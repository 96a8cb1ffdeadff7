"""The streaming clean step on files made for it: several batches, faults in a late batch.

Every real file is also streamed against the whole-file path in ingest/test_real_sources.py;
here the cases are the ones a batch boundary could break: a primary key repeated across
batches, blank rows before it (row numbers), a refused line far into the file (the files
already published stay as they were, and no temporary file is left).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dinum_pipelines.lib.clean import parsing
from dinum_pipelines.lib.clean.cleaning import clean_table
from dinum_pipelines.lib.ingest.http import Download
from dinum_pipelines.lib.storage.layout import DataLayout
from dinum_pipelines.lib.clean.parsing import ParseError, read_source
from dinum_pipelines.lib.pipeline import clean
from dinum_pipelines.lib.declare.registry import DatasetSpec
from dinum_pipelines.lib.clean.tables import to_arrow

HEADER = "siret;montant;date\n"


def spec(policy: str = "drop_identical") -> DatasetSpec:
    return DatasetSpec.model_validate(
        {
            "slug": "jeu_flux",
            "title": "Jeu lu par lots",
            "description": "Un jeu de données de test lu par lots, avec une description assez longue pour les règles du catalogue.",
            "organization": {"slug": "org", "name": "Organisation"},
            "source": {"url": "http://127.0.0.1:9/flux.csv", "format": "csv", "csv": {"delimiter": ";", "decimal": ","}},
            "license": "lov2",
            "frequency": "monthly",
            "columns": [{"name": "siret"}, {"name": "montant", "type": "number"}, {"name": "date", "type": "date"}],
            "primary_key": ["siret"],
            "on_duplicate_key": policy,
        }
    )


def store(layout: DataLayout, slug: str, text: str) -> Path:
    """`text` stored as the dataset's latest raw version; its path."""
    raw = layout.raw_store()
    staging = raw.staging_dir(slug)
    staging.mkdir(parents=True, exist_ok=True)
    path = staging / "download"
    data = text.encode("utf-8")
    path.write_bytes(data)
    version = raw.add(slug, Download(url="http://127.0.0.1:9/flux.csv", status_code=200, fetched_at=datetime.now(UTC),
                                     path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data)))
    return raw.local_path(version)


def rows(count: int, start: int = 0) -> str:
    return "".join(f"{i:014d};{i},5;01/02/2024\n" for i in range(start, start + count))


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsing, "CSV_BLOCK_BYTES", 4096)
    monkeypatch.setattr(parsing, "CSV_BATCH_ROWS", 50)


@pytest.mark.parametrize("policy", ["drop_identical", "keep_first", "keep_last", "keep_all"])
def test_keys_repeated_across_batches_are_resolved_as_in_one_piece(tmp_path, small_batches, policy):
    dataset = spec(policy)
    # A blank row early shifts every later row number; repeats of row 3 come back batches later,
    # identical or with another amount.
    body = rows(3) + ";;\n" + rows(400, 3) + rows(1, 1) + "00000000000002;9,5;01/02/2024\n" + rows(300, 403) + rows(1, 200)
    layout = DataLayout(tmp_path)
    path = store(layout, dataset.slug, HEADER + body)
    outcome = clean(dataset, layout)
    frame, _ = read_source(path, dataset.source)
    cleaned, report = clean_table(frame, dataset, ",")
    assert outcome.report.to_dict() == report.to_dict()
    assert report.duplicates is not None and report.structure
    assert pq.read_table(outcome.files.parquet).equals(to_arrow(cleaned, dataset), check_metadata=False)
    assert outcome.row_count == len(cleaned)


def test_a_refused_late_line_leaves_the_published_files_as_they_were(tmp_path, small_batches):
    dataset = spec()
    layout = DataLayout(tmp_path)
    store(layout, dataset.slug, HEADER + rows(500))
    files = clean(dataset, layout).files
    before = {path.name: path.read_bytes() for path in (files.parquet, files.csv, files.cleaning_report)}
    store(layout, dataset.slug, HEADER + rows(2000, 500) + "00000000009999;1,5;01/02/2024;en trop\n" + rows(10, 2600))
    with pytest.raises(ParseError, match=r"line 2002 has 4 fields"):
        clean(dataset, layout)
    assert {path.name: path.read_bytes() for path in (files.parquet, files.csv, files.cleaning_report)} == before
    assert sorted(path.name for path in files.directory.iterdir()) == sorted(before)
