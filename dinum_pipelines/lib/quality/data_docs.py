"""Great Expectations Data Docs for every dataset, built in one place from archived validation results.

Checks run in parallel Dagster runs, each validating in memory. A GX file context shared by them
would race on its stores and on `index.html`, so each check only archives its validation result
(GX's JSON format) next to the dataset's clean files, and one step builds the whole site from
those archives: in a fresh GX project in a new folder, then swapped in with an atomic rename of a
symbolic link. Readers never see a half-built site, and two builds can never mix their files.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

ARCHIVE_DIR = "validations"
# Validation results kept per dataset (the site shows each).
KEEP_VALIDATIONS = 30
# Built sites live beside the link as `.<name>-<token>`; the link names the current one.
_BUILD_PREFIX = "."
# A build folder older than this is not the current site nor one about to become it.
STALE_BUILD_SECONDS = 3600


def archive_validation(directory: Path, gx_result: dict[str, Any], keep: int = KEEP_VALIDATIONS) -> Path:
    """Save one validation result under `directory/validations/`, keeping the newest `keep`."""
    archive = directory / ARCHIVE_DIR
    archive.mkdir(parents=True, exist_ok=True)
    when = datetime.fromisoformat(str(gx_result["meta"]["validation_time"]))
    path = archive / f"{when.strftime('%Y%m%dT%H%M%S.%fZ')}.json"
    handle = tempfile.NamedTemporaryFile("w", dir=archive, prefix=".tmp-", suffix=".json", delete=False, encoding="utf-8")
    with handle:
        json.dump(gx_result, handle, ensure_ascii=False, default=str)
    os.replace(handle.name, path)
    for old in sorted(archive.glob("*.json"))[:-keep]:
        old.unlink(missing_ok=True)
    return path


def archived_validations(directories: Iterable[tuple[str, Path]]) -> dict[str, list[dict[str, Any]]]:
    """Each dataset's archived results, oldest first, from (slug, clean files directory) pairs."""
    found = {}
    for slug, directory in directories:
        paths = sorted((directory / ARCHIVE_DIR).glob("*.json"))
        if paths:
            found[slug] = [json.loads(path.read_text(encoding="utf-8")) for path in paths]
    return found


def _build_in(project: Path, validations: dict[str, list[dict[str, Any]]]) -> Path:
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    import dinum_pipelines.lib.quality.gx_custom  # noqa: F401 (registers our expectations for rendering)

    context = gx.get_context(mode="file", project_root_dir=str(project))
    schema = ExpectationSuiteValidationResultSchema()
    for slug, results in validations.items():
        loaded = [schema.load(result) for result in results]
        latest = loaded[-1]
        # The suite page shows the rules as they were last run.
        context.suites.add_or_update(
            gx.ExpectationSuite(
                name=latest.suite_name,
                expectations=[item.expectation_config.to_domain_obj() for item in latest.results],
            )
        )
        for result in loaded:
            run_time = datetime.fromisoformat(result.meta["validation_time"])
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
                run_id=RunIdentifier(run_name=slug, run_time=run_time),
                batch_identifier=slug,
            )
            context.validation_results_store.set(key, result)
    context.build_data_docs()
    return project / "gx" / "uncommitted" / "data_docs" / "local_site"


def build_site(validations: dict[str, list[dict[str, Any]]], site: Path) -> Path:
    """Build the Data Docs of `validations` and make `site` (a symbolic link) point at them.

    Returns `site/index.html`. Earlier builds are removed once the link has moved.
    """
    site.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(6)
    build = site.parent / f"{_BUILD_PREFIX}{site.name}-{token}"
    with tempfile.TemporaryDirectory(dir=site.parent, prefix=f"{_BUILD_PREFIX}{site.name}-project-") as project:
        built = _build_in(Path(project), validations)
        shutil.move(str(built), build)
    link = site.parent / f"{_BUILD_PREFIX}{site.name}-link-{token}"
    link.symlink_to(build.name, target_is_directory=True)
    os.replace(link, site)
    _remove_stale_builds(site, keep=build)
    return site / "index.html"


def _remove_stale_builds(site: Path, keep: Path) -> None:
    """Builds and build folders left over: only old ones, since a concurrent build may be about to link its own."""
    now = time.time()
    for old in site.parent.glob(f"{_BUILD_PREFIX}{site.name}-*"):
        if old != keep and old.is_dir() and not old.is_symlink() and now - old.stat().st_mtime > STALE_BUILD_SECONDS:
            shutil.rmtree(old, ignore_errors=True)
