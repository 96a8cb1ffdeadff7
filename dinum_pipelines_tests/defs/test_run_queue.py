"""The run queue of the demo's instance (dinum_pipelines/demo/dagster.yaml) holds back a third run
of one administration while two are in flight, whoever asked for them, and lets another
administration's run go: Dagster's own queue daemon, on the code location as Dagster loads it."""

from pathlib import Path

import dagster as dg
import yaml
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

import dinum_pipelines.demo
from dinum_pipelines.definitions import build_definitions
from dinum_pipelines.defs.keys import job_name
from dinum_pipelines_tests.conftest import REPO_ROOT, VALID_DATASET

DEMO_INSTANCE = Path(dinum_pipelines.demo.__file__).parent / "dagster.yaml"
OTHER_ORGANIZATION = "{slug: org-test, name: Organisation de test}"


def test_at_most_two_runs_per_administration_leave_the_queue(write_registry, monkeypatch):
    folder = write_registry(
        {
            "communes_a": VALID_DATASET.format(slug="communes_a", url="http://127.0.0.1:9/a.csv"),
            "communes_b": VALID_DATASET.format(slug="communes_b", url="http://127.0.0.1:9/b.csv"),
            "budget_c": VALID_DATASET.format(slug="budget_c", url="http://127.0.0.1:9/c.csv").replace(
                OTHER_ORGANIZATION, "{slug: autre-org, name: Autre organisation}"
            ),
        }
    )
    monkeypatch.setenv("DINUM_SOURCES_DIR", str(folder))
    monkeypatch.setenv("DINUM_CATALOG_API_KEY", "unused-no-run-is-executed")
    settings = yaml.safe_load(DEMO_INSTANCE.read_text(encoding="utf-8"))
    overrides = {
        "concurrency": {"runs": settings["concurrency"]["runs"]},
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"},
        # Launched runs are recorded, not executed: what is tested is which runs leave the queue.
        "run_launcher": {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"},
    }
    origin = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="dinum_pipelines.definitions", attribute="defs"))
    with (
        dg.instance_for_test(overrides=overrides) as instance,
        WorkspaceProcessContext(instance, InProcessTestWorkspaceLoadTarget(origin)) as workspace,
    ):
        request = workspace.create_request_context()
        (entry,) = request.get_code_location_entries().values()
        repository = entry.code_location.get_repository("__repository__")
        defs = build_definitions(str(folder))
        submitted = []
        for slug in ("communes_a", "communes_b", "communes_a", "budget_c"):
            remote_job = repository.get_full_job(job_name(slug))
            run = instance.create_run_for_job(
                job_def=defs.resolve_job_def(job_name(slug)),
                remote_job_origin=remote_job.get_remote_origin(),
                job_code_origin=remote_job.get_python_origin(),
                tags=remote_job.run_tags,  # as the UI, a sensor or the automation daemon would
                status=DagsterRunStatus.NOT_STARTED,
            )
            instance.submit_run(run.run_id, request)
            submitted.append(run)
        list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(workspace))
        statuses = [instance.get_run_by_id(run.run_id).status for run in submitted]
        organizations = [run.tags["dinum/organization"] for run in submitted]
    assert organizations == ["org-test", "org-test", "org-test", "autre-org"]
    assert statuses == [DagsterRunStatus.STARTING, DagsterRunStatus.STARTING, DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING]


def test_every_instance_limits_runs_per_administration_and_retries_runs_that_died():
    demo = yaml.safe_load(DEMO_INSTANCE.read_text(encoding="utf-8"))
    limit = {"key": "dinum/organization", "value": {"applyLimitPerUniqueValue": True}, "limit": 2}
    for path in (DEMO_INSTANCE, REPO_ROOT / "deploy" / "dagster.postgres.yaml", REPO_ROOT / "deploy" / "celery" / "dagster.yaml"):
        settings = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert settings["concurrency"]["runs"]["tag_concurrency_limits"] == [limit], path
        assert settings["run_retries"] == demo["run_retries"] == {"enabled": True, "max_retries": 0, "retry_on_asset_or_op_failure": False}
