"""The instance's run settings (dinum_pipelines/demo/dagster.yaml), with Dagster's own daemons on
the code location as Dagster loads it: the run queue holds back a third run of one administration
while two are in flight and lets another administration's run go; the run-retry daemon relaunches
a run whose process died, and not one a blocking quality check stopped."""

from pathlib import Path

import dagster as dg
import yaml
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.storage.tags import WILL_RETRY_TAG
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.auto_run_reexecution.event_log_consumer import EventLogConsumerDaemon
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

import dinum_pipelines.demo
from dinum_pipelines.definitions import build_definitions
from dinum_pipelines.defs.keys import job_name
from dinum_pipelines_tests.conftest import REPO_ROOT, VALID_DATASET
from dinum_pipelines_tests.defs.test_alerts import BAD_CODES, RULES, SLUG
from dinum_pipelines_tests.httpserver import Reply, ScriptedServer

DEMO_INSTANCE = Path(dinum_pipelines.demo.__file__).parent / "dagster.yaml"
TEST_ORGANIZATION_YAML = "{slug: org-test, name: Organisation de test}"
CODE_LOCATION = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="dinum_pipelines.definitions", attribute="defs"))
MOCKED_LAUNCHER = {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"}


def registry_of_two_administrations(write_registry):
    return write_registry(
        {
            "communes_a": VALID_DATASET.format(slug="communes_a", url="http://127.0.0.1:9/a.csv"),
            "communes_b": VALID_DATASET.format(slug="communes_b", url="http://127.0.0.1:9/b.csv"),
            "budget_c": VALID_DATASET.format(slug="budget_c", url="http://127.0.0.1:9/c.csv").replace(
                TEST_ORGANIZATION_YAML, "{slug: autre-org, name: Autre organisation}"
            ),
        }
    )


def queued_runs(instance, workspace, folder, slugs) -> list:
    """Runs of the datasets' jobs submitted as the UI, a sensor or the automation daemon would."""
    defs = build_definitions(str(folder))
    request = workspace.create_request_context()
    (entry,) = request.get_code_location_entries().values()
    repository = entry.code_location.get_repository("__repository__")
    submitted = []
    for slug in slugs:
        remote_job = repository.get_full_job(job_name(slug))
        run = instance.create_run_for_job(
            job_def=defs.resolve_job_def(job_name(slug)),
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            tags=remote_job.run_tags,
            status=DagsterRunStatus.NOT_STARTED,
        )
        instance.submit_run(run.run_id, request)
        submitted.append(run)
    return submitted


def test_at_most_two_runs_per_administration_leave_the_queue(write_registry, monkeypatch):
    folder = registry_of_two_administrations(write_registry)
    monkeypatch.setenv("DINUM_SOURCES_DIR", str(folder))
    monkeypatch.setenv("DINUM_CATALOG_API_KEY", "unused-no-run-is-executed")
    settings = yaml.safe_load(DEMO_INSTANCE.read_text(encoding="utf-8"))
    overrides = {
        "concurrency": {"runs": settings["concurrency"]["runs"]},
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"},
        # Launched runs are recorded, not executed: what is tested is which runs leave the queue.
        "run_launcher": MOCKED_LAUNCHER,
    }
    with (
        dg.instance_for_test(overrides=overrides) as instance,
        WorkspaceProcessContext(instance, InProcessTestWorkspaceLoadTarget(CODE_LOCATION)) as workspace,
    ):
        submitted = queued_runs(instance, workspace, folder, ("communes_a", "communes_b", "communes_a", "budget_c"))
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


def test_a_run_whose_process_died_is_retried_and_a_refused_publication_is_not(write_registry, monkeypatch, tmp_path):
    with ScriptedServer() as source:
        folder = write_registry({SLUG: VALID_DATASET.format(slug=SLUG, url=f"{source.url}/codes.csv") + RULES})
        monkeypatch.setenv("DINUM_SOURCES_DIR", str(folder))
        monkeypatch.setenv("DINUM_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("DINUM_CATALOG_API_KEY", "unused-no-publication-reaches-the-catalog")
        settings = yaml.safe_load(DEMO_INSTANCE.read_text(encoding="utf-8"))
        with (
            dg.instance_for_test(overrides={"run_retries": settings["run_retries"], "run_launcher": MOCKED_LAUNCHER}) as instance,
            WorkspaceProcessContext(instance, InProcessTestWorkspaceLoadTarget(CODE_LOCATION)) as workspace,
        ):
            daemon = EventLogConsumerDaemon()
            list(daemon.run_iteration(workspace))  # its cursor starts here
            source.plan(Reply(200, BAD_CODES))
            refused = build_definitions(str(folder)).resolve_job_def(job_name(SLUG)).execute_in_process(instance=instance, raise_on_error=False)
            assert not refused.success
            (died,) = queued_runs(instance, workspace, folder, [SLUG])  # launched (not executed)
            instance.report_run_failed(instance.get_run_by_id(died.run_id), "the run worker's process was lost")
            list(daemon.run_iteration(workspace))
            retries = [run for run in instance.get_runs() if run.parent_run_id is not None]
            assert [run.parent_run_id for run in retries] == [died.run_id]
            assert retries[0].tags["dinum/organization"] == "org-test" and retries[0].tags["dagster/retry_number"] == "1"
            assert instance.get_run_by_id(refused.run_id).tags[WILL_RETRY_TAG] == "false"
