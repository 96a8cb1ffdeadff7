"""The Celery deployment (issue 13, part 3): 20 datasets across three workers, one killed mid-step.

The deployment is the one `python -m dinum_pipelines.deploy.celery_cluster up` starts, from the
same code (`CeleryCluster`): the instance on a throwaway PostgreSQL database, the runs queued
(at most two per administration), each step a task on the local RabbitMQ taken by one of three
`dagster-celery` workers, each in its own folder, the raw store and the clean files on moto's
S3 server. The 20 datasets (the demo's subsidies file, a different twentieth of its rows left out
of each, under five administrations) are served on loopback; the catalog is reached through a
fault proxy that holds the first file upload half-way, so the worker sending it can be killed
(SIGKILL, its whole process group: a machine lost) while it executes that publication step.

What must hold: every run succeeds; the killed step ran again on another worker; each dataset
is in the catalog once, with one CSV and one Parquet whose bytes are those a plain local run of
the pipeline produces, and its clean files are in the S3 store; no administration ever had more
than two runs at once. A missing service (PostgreSQL, RabbitMQ) fails the test with its name.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import fsspec
import pytest
import requests
import yaml
from dagster_graphql import DagsterGraphQLClient

from dinum_pipelines.catalog import CatalogSettings, serve_in_thread
from dinum_pipelines.defs.keys import job_name, published_key
from dinum_pipelines.demo.administrations import subventions_associations_csv
from dinum_pipelines.demo.runner import bootstrap_demo_publisher
from dinum_pipelines.demo.server import ServedFile, serve_administrations
from dinum_pipelines.deploy.celery_cluster import LOCATION_NAME, S3_BUCKET, CeleryCluster, DeploymentError
from dinum_pipelines.lib.ingest.http import make_session
from dinum_pipelines.lib.storage.layout import DataLayout
from dinum_pipelines.lib.pipeline import clean, ingest
from dinum_pipelines.lib.quality.history import QUALITY_REPORT_SLUG
from dinum_pipelines.lib.declare.registry import DEFAULT_SOURCES_DIR, load_registry, read_declaration
from dinum_pipelines_tests.catalog.conftest import create_postgres_database, drop_postgres_database
from dinum_pipelines_tests.faultproxy import FaultProxy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]  # beyond RUN_TIMEOUT, for the start and the checks

DATASETS = 20
ADMINISTRATIONS = 5
RUNS_PER_ADMINISTRATION = 2  # deploy/celery/dagster.yaml's tag concurrency limit
RUN_TIMEOUT = 900  # a guard against a hang, not a speed target: 20 runs take 1.5 min alone, 4+ beside the rest of the suite
TEMPLATE = DEFAULT_SOURCES_DIR / "subventions_associations" / "defs.yaml"


def _registry(folder: Path) -> tuple[Path, dict[str, tuple[str, bytes]]]:
    """20 datasets from the demo's subsidies: registry files, and the file each one's source serves."""
    template = read_declaration(TEMPLATE)
    header, *rows = subventions_associations_csv().split(b"\r\n")[:-1]
    folder.mkdir()
    served = {}
    for index in range(DATASETS):
        slug = f"subventions_{index:02d}"
        administration = f"prefecture-{index % ADMINISTRATIONS + 1}"
        path = f"/{administration}/subventions-{index:02d}.csv"
        kept = [row for number, row in enumerate(rows) if number % DATASETS != index]
        served[slug] = (path, b"\r\n".join([header, *kept, b""]))
        spec = {
            **template,
            "slug": slug,
            "title": f"Subventions aux associations, lot {index:02d}",
            "organization": {"slug": administration, "name": f"Préfecture de démonstration n° {index % ADMINISTRATIONS + 1}"},
            "source": {**template["source"], "url": "${DINUM_DEMO_ADMIN_URL:-http://127.0.0.1:8765}" + path},
        }
        (folder / f"{slug}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder, served


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _expected_files(registry_dir: Path, admin_url: str, work: Path, monkeypatch) -> dict[str, dict[str, str]]:
    """sha256 of each dataset's clean CSV and Parquet as a plain local run writes them (no Dagster)."""
    monkeypatch.setenv("DINUM_DEMO_ADMIN_URL", admin_url)
    layout = DataLayout(work)
    expected = {}
    for slug, spec in load_registry(str(registry_dir)).items():
        ingest(spec, layout, make_session(retries=0))
        files = clean(spec, layout).files
        expected[slug] = {"csv": _sha256(files.csv.read_bytes()), "parquet": _sha256(files.parquet.read_bytes())}
    return expected


def _takers(cluster: CeleryCluster, instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """(step key, worker) each time a worker took one of the run's steps, in order (the executor's engine events)."""
    taken = []
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
        event = record.event_log_entry.dagster_event
        if "in celery worker" in (event.message or ""):
            node = str(event.event_specific_data.metadata["Celery worker"].value)
            taken.append((event.step_key, cluster.worker_of_node(node)))
    return taken


def _worker_of(cluster: CeleryCluster, instance: dg.DagsterInstance, run_id: str, step_key: str) -> list[str]:
    """The workers that took the step, in order."""
    return [worker for step, worker in _takers(cluster, instance, run_id) if step == step_key]


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = most = 0
    for _, change in points:
        current += change
        most = max(most, current)
    return most


@pytest.fixture
def postgres_url():
    server_url, database_url = create_postgres_database("dinum_dagster_celery")
    try:
        yield database_url
    finally:
        drop_postgres_database(server_url, database_url)


def test_twenty_datasets_on_three_workers_one_killed_mid_step(tmp_path, postgres_url, monkeypatch):
    registry_dir, sources = _registry(tmp_path / "sources")
    files = {path: ServedFile(content, "text/csv; charset=windows-1252", datetime(2025, 1, 15, 7, 30, tzinfo=UTC)) for path, content in sources.values()}
    registry = load_registry(str(registry_dir))
    organizations = {spec.organization.slug: spec.organization.name for spec in registry.values()}

    with (
        serve_administrations(files=files) as administrations,
        serve_in_thread(CatalogSettings.in_directory(tmp_path / "catalog")) as catalog,
        FaultProxy(catalog.url) as proxy,
    ):
        key = bootstrap_demo_publisher(catalog.store, "publisher@celery.test", organizations)
        expected = _expected_files(registry_dir, administrations.url, tmp_path / "local_run", monkeypatch)
        # The first file upload of any dataset stops half-way until the test lets it go.
        upload = proxy.hold_body(method="POST", path=r"/datasets/[^/]+/upload/$")
        cluster = CeleryCluster(
            tmp_path / "deployment",
            workers=3,
            postgres_url=postgres_url,
            queue=f"dinum_test_{uuid.uuid4().hex[:8]}",
            env={
                "DINUM_SOURCES_DIR": str(registry_dir),
                "DINUM_DEMO_ADMIN_URL": administrations.url,
                "DINUM_CATALOG_URL": proxy.url,
                "DINUM_CATALOG_API_KEY": key,
            },
        )
        started = time.monotonic()
        try:
            cluster.start()
        except DeploymentError as exc:
            pytest.fail(f"the Celery deployment did not start: {exc}", pytrace=False)
        try:
            with cluster.instance() as instance:
                ready = time.monotonic()

                def submit(slug: str) -> str:
                    client = DagsterGraphQLClient("127.0.0.1", port_number=cluster.webserver_port)  # one per thread
                    return client.submit_job_execution(job_name(slug), repository_location_name=LOCATION_NAME, repository_name="__repository__")

                with ThreadPoolExecutor(4) as submitting:
                    submitted = submitting.map(submit, registry)
                    run_ids = dict(zip(registry, submitted, strict=True))

                assert upload.held.wait(RUN_TIMEOUT / 2), "no dataset reached its upload"
                held_path = next(path for method, path in proxy.arrived if method == "POST" and re.search(r"/upload/$", path))
                dataset_id = held_path.split("/datasets/")[1].split("/")[0]
                killed_slug = catalog.store.datasets.get(dataset_id)["extras"]["dinum:slug"]
                killed_step = f"{killed_slug}__published"
                takers = _worker_of(cluster, instance, run_ids[killed_slug], killed_step)
                assert len(takers) == 1, takers
                victim = takers[0]
                cluster.kill_worker(victim)
                killed_at = time.monotonic()
                # The catalog sees its client vanish mid-upload, as it would when a machine dies.
                proxy.release(upload, cut=True)

                deadline = time.monotonic() + RUN_TIMEOUT
                slug_of = {run_id: slug for slug, run_id in run_ids.items()}
                while time.monotonic() < deadline:
                    runs = {slug_of[run.run_id]: run for run in instance.get_runs(dg.RunsFilter(run_ids=list(run_ids.values())))}
                    if all(run.is_finished for run in runs.values()):
                        break
                    time.sleep(2)
                finished = time.monotonic()
                statuses = {slug: run.status for slug, run in runs.items()}
                takers_after = _worker_of(cluster, instance, run_ids[killed_slug], killed_step)
                records = {slug: instance.get_run_record_by_id(run_id) for slug, run_id in run_ids.items()}
                materializations = {
                    slug: instance.fetch_materializations(published_key(slug), limit=10).records for slug in registry
                }
                steps_by_worker = {name: 0 for name in cluster.worker_names}
                for run_id in run_ids.values():
                    for _step, worker in _takers(cluster, instance, run_id):
                        steps_by_worker[worker] += 1
                s3 = fsspec.filesystem("s3", endpoint_url=cluster.s3_endpoint, key="moto-local", secret="moto-local", use_listings_cache=False)
                stored = {slug: {Path(key).name: key for key in s3.find(f"{S3_BUCKET}/clean/{slug}")} for slug in registry}
                stored_sha = {
                    slug: {role: _sha256(s3.cat_file(found[f"{slug}.{role}"])) for role in ("csv", "parquet") if f"{slug}.{role}" in found}
                    for slug, found in stored.items()
                }
        finally:
            cluster.stop()
            cluster.delete_queue()

        print(
            f"\nCelery deployment: started in {ready - started:.1f} s; {DATASETS} runs finished {finished - ready:.1f} s after "
            f"submission; worker {victim} killed during {killed_step} ({killed_at - ready:.1f} s in), which then ran on "
            f"{takers_after[1:]}; steps per worker (the killed one's included): {steps_by_worker}"
        )
        assert statuses == {slug: dg.DagsterRunStatus.SUCCESS for slug in registry}, {s: v for s, v in statuses.items() if v != dg.DagsterRunStatus.SUCCESS}
        # The step the killed worker was executing ran again, on another worker, and nowhere else.
        assert takers_after[0] == victim and len(takers_after) == 2 and takers_after[1] != victim, takers_after
        assert all(count > 0 for name, count in steps_by_worker.items()), steps_by_worker
        # Published once: one materialization each, one catalog dataset each with one file per role.
        assert {slug: len(found) for slug, found in materializations.items()} == {slug: 1 for slug in registry}
        datasets = requests.get(f"{catalog.url}/api/1/datasets/", params={"page_size": 100}, timeout=10).json()["data"]
        by_slug: dict[str, list[dict]] = {}
        for dataset in datasets:
            by_slug.setdefault(dataset["extras"].get("dinum:slug"), []).append(dataset)
        # (The deployment's quality report sensor may have published its own dataset meanwhile.)
        assert set(by_slug) <= {*registry, QUALITY_REPORT_SLUG}, set(by_slug)
        assert {slug: len(by_slug.get(slug, [])) for slug in registry} == {slug: 1 for slug in registry}
        published = {}
        for slug in registry:
            [dataset] = by_slug[slug]
            roles = [resource["extras"].get("dinum:role") for resource in dataset["resources"]]
            assert sorted(roles) == ["csv", "parquet"], (slug, roles)
            published[slug] = {
                resource["extras"]["dinum:role"]: _sha256(requests.get(resource["url"], timeout=10).content)
                for resource in dataset["resources"]
            }
        # The right bytes: those of a plain local run, in the catalog and in the S3 store.
        assert published == expected
        assert stored_sha == expected
        assert all({"cleaning.json", "quality.json", "published.json"} <= set(found) for found in stored.values()), stored
        # The run queue kept each administration to two runs at once.
        for organization in organizations:
            intervals = [
                (records[slug].start_time, records[slug].end_time)
                for slug, spec in registry.items()
                if spec.organization.slug == organization
            ]
            assert _most_at_once(intervals) <= RUNS_PER_ADMINISTRATION, organization
