"""The fault matrix (issue 12): what a publication to the catalog survives, printed as a table.

Each case publishes a small dataset of its own, breaks something during the next publication,
then judges four things, printed as one row (`pytest -s` shows the table; a failure's message
carries it too):

- intact: every file the catalog served before the fault is still served byte for byte
  (sha256), unless the complete new file replaced it;
- no duplicate: one live dataset carrying the `dinum:slug` extra, one resource per `dinum:role`
  extra, none left without a role;
- error shown: where people look, a message says which catalog failed and how (the Dagster
  run's failure in its event log; the catalog's log), and the API key is in none of them;
- converged: the next run of the dataset's job, with nothing edited by hand, publishes the new
  files (or, for the usage metrics, the new figures).

Everything is real and on loopback: the administrations' server, the catalog (in a thread, or as
a `python -m dinum_pipelines.catalog serve` process where it is to be killed), Dagster runs on an
instance configured as the demo's (`demo/dagster.yaml`, for its pools), in process or as a
`dagster asset materialize` process where the run is to be killed. Faults go between the
pipeline and the catalog through a proxy (dinum_pipelines_tests/faultproxy.py): it answers 503,
drops connections, holds an upload half-way until the test has killed something, or lines two
publishers up so that they race. The retries are the pipeline's own (3, backoff 0.5 s).

PostgreSQL (case 5) is a server of the test's own, made by initdb in a temporary folder and
stopped then started with pg_ctl (as the `postgres` user when the tests run as root): a real
restart, which the machine's shared server, used by other tests at the same time, cannot take.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests

from dinum_pipelines.catalog import CatalogSettings, CatalogStore, RunningCatalog, serve_in_thread
from dinum_pipelines.definitions import build_definitions
from dinum_pipelines.defs.keys import clean_key, job_name, publication_pool, published_key, raw_key
from dinum_pipelines.defs.metrics.assets import CATALOG_METRICS_KEY, METRICS_API_KEY_VAR, ROLLUP_JOB, catalog_payload_file
from dinum_pipelines.defs.monitoring.quality_report import monitoring_organization
from dinum_pipelines.demo.__main__ import INSTANCE_SETTINGS
from dinum_pipelines.demo.runner import QUIET_RUN_CONFIG, bootstrap_demo_publisher, bootstrap_metrics_sysadmin
from dinum_pipelines.demo.server import RunningAdministrations, serve_administrations
from dinum_pipelines.lib.publish.catalog_client import UdataClient
from dinum_pipelines.lib.storage.layout import DataLayout
from dinum_pipelines.lib.metrics.usage import MetricsLayout
from dinum_pipelines.lib.pipeline import publish_clean_files
from dinum_pipelines.lib.publish.publishing import ROLE_EXTRA, SHA256_EXTRA, find_datasets
from dinum_pipelines.lib.declare.registry import DatasetSpec, load_registry
from dinum_pipelines_tests.catalog.conftest import Api
from dinum_pipelines_tests.conftest import REPO_ROOT
from dinum_pipelines_tests.faultproxy import Fault, FaultProxy
from dinum_pipelines_tests.metrics.conftest import catalog_figures
from dinum_pipelines_tests.metrics.test_catalog_metrics import sample_payload

pytestmark = pytest.mark.slow

SLUG = "releves_compteurs"
ORGANIZATION = "collectivite-test"
SOURCE_PATH = f"/{ORGANIZATION}/releves.csv"
REGISTRY_FILE = f"""\
slug: {SLUG}
title: Relevés des compteurs d'eau de la collectivité de test
description: >
  Relevés mensuels des compteurs d'eau des bâtiments de la collectivité de test, un par ligne :
  code du compteur, bâtiment, volume relevé. Jeu de données fictif du test des pannes.
organization: {{slug: {ORGANIZATION}, name: Collectivité de test}}
source:
  url: "${{DINUM_DEMO_ADMIN_URL}}{SOURCE_PATH}"
  format: csv
license: lov2
frequency: monthly
"""
UPLOAD = r"/upload/$"
CATALOG_LOGGER = "dinum_pipelines.catalog"
WAIT_SECONDS = 60


def source_file(version: int) -> bytes:
    """The administration's file; big enough (~60 kB) for an upload to be held half-way."""
    rows = "".join(f"C{index:05d},Bâtiment {index % 40},{index * version}\n" for index in range(3000))
    return ("code_compteur,batiment,volume_m3\n" + rows).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wait_until(ready: Callable[[], object], what: str, timeout: float = WAIT_SECONDS) -> object:
    """Poll until `ready()` is truthy (a wait for something to happen, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not (value := ready()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.05)
    return value


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The table


INTACT, NO_DUPLICATE, ERROR_SHOWN, CONVERGED = "intact", "no duplicate", "error shown", "converged"
MARKS = (INTACT, NO_DUPLICATE, ERROR_SHOWN, CONVERGED)


@dataclass
class Row:
    """One case's line of the table: each mark is ✓ when judged at least once and never found wanting."""

    case: str
    happened: str = ""
    where: str = ""  # where people see the error
    marks: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # why a mark is ✗

    def judge(self, mark: str, ok: object, detail: object = "") -> None:
        self.marks[mark] = self.marks.get(mark, True) and bool(ok)
        if not ok:
            self.notes.append(f"{mark}: {detail}")

    def ok(self, mark: str) -> bool:
        return self.marks.get(mark, False)

    @property
    def green(self) -> bool:
        return all(self.ok(mark) for mark in MARKS)


def table(rows: list[Row]) -> str:
    def tick(row: Row, mark: str) -> str:
        return "✓" if row.ok(mark) else "✗"

    lines = [
        ["case", "what happened", INTACT, NO_DUPLICATE, "error shown (where)", CONVERGED],
        *[
            [row.case, row.happened, tick(row, INTACT), tick(row, NO_DUPLICATE), f"{tick(row, ERROR_SHOWN)} {row.where}", tick(row, CONVERGED)]
            for row in rows
        ],
    ]
    widths = [max(len(line[column]) for line in lines) for column in range(len(lines[0]))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    notes = [f"  {row.case}: {note}" for row in rows for note in row.notes]
    return "\n".join(["", "Fault matrix", *text, *(["", "Why a mark is ✗:", *notes] if notes else [])])


# The moving parts of a case


class Scene:
    """One case: a catalog (reached through a fault proxy), a Dagster instance and a data folder."""

    def __init__(self, bench: Bench, name: str, catalog_url: str, key: str) -> None:
        self.bench = bench
        self.root = bench.tmp / name
        self.catalog_url = catalog_url
        self.key = key
        self.proxy = FaultProxy(catalog_url)
        home = self.root / "dagster_home"
        home.mkdir(parents=True)
        shutil.copyfile(INSTANCE_SETTINGS, home / "dagster.yaml")
        self.instance = dg.DagsterInstance.from_config(str(home))
        self.layout = DataLayout(self.root / "data")
        self.env = {
            "DAGSTER_HOME": str(home),
            "DINUM_SOURCES_DIR": str(bench.sources),
            "DINUM_DEMO_ADMIN_URL": bench.administrations.url,
            "DINUM_CATALOG_URL": self.proxy.url,
            "DINUM_CATALOG_API_KEY": key,
            "DINUM_DATA_DIR": str(self.layout.root),
        }
        for variable, value in self.env.items():
            bench.monkeypatch.setenv(variable, value)
        self.defs = build_definitions()
        self.spec: DatasetSpec = load_registry(bench.sources)[SLUG]

    def close(self) -> None:
        self.proxy.stop()
        self.instance.dispose()

    # Runs

    def run(self, *, until_checked: bool = False, published_only: bool = False) -> dg.ExecuteInProcessResult:
        """The dataset's job, in process; `until_checked` stops before the publication."""
        job = self.defs.resolve_job_def(job_name(SLUG))
        options: dict = {}
        if until_checked:
            options = {"asset_selection": [raw_key(SLUG), clean_key(SLUG)]}  # the check on clean comes along
        elif published_only:
            options = {"asset_selection": [published_key(SLUG)]}
        return job.execute_in_process(instance=self.instance, raise_on_error=False, run_config=QUIET_RUN_CONFIG, **options)

    def publish_version(self, version: int) -> dict[str | None, str]:
        """The administration serves `version`; the job takes it through to the catalog. What the
        catalog serves then."""
        self.bench.administrations.publish(SOURCE_PATH, source_file(version))
        result = self.run()
        assert result.success and self.published(result), f"publishing version {version} failed: {failure(result)}"
        return self.served()

    @staticmethod
    def published(result: dg.ExecuteInProcessResult) -> bool:
        return any(event.asset_key == published_key(SLUG) for event in result.get_asset_materialization_events())

    @contextmanager
    def materialize_in_a_process(self) -> Iterator[subprocess.Popen]:
        """`dagster asset materialize` of the published asset: the run worker is that process,
        and the step runs in a process of its own, as in a deployment."""
        command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "dinum_pipelines.definitions", "--select", "/".join(published_key(SLUG).path)]
        log = (self.root / "dagster-cli.log").open("ab")
        process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            log.close()

    def kill_publishing_run(self, held: Fault) -> str:
        """Materialize the published asset in a `dagster` process, SIGKILL its step's process once
        the proxy holds the request `held`, then cut that request (its process is gone); the run id."""
        with self.materialize_in_a_process() as process:
            wait_until(lambda: held.held.is_set() or process.poll() is not None, "the request to be held")
            run_id = self.kill_publishing_step()
            process.wait(WAIT_SECONDS)
        self.proxy.release(held, cut=True)
        return run_id

    def kill_publishing_step(self) -> str:
        """SIGKILL the process running the published step of the run in flight; its run id."""
        def step_pid() -> tuple[str, int] | None:
            for record in self.instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
                for event in self.instance.all_logs(record.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_WORKER_STARTED):
                    if event.step_key == f"{SLUG}__published":
                        return record.dagster_run.run_id, int(event.dagster_event.event_specific_data.metadata["pid"].text)
            return None

        run_id, pid = wait_until(step_pid, "the published step's process")  # type: ignore[misc]
        os.kill(pid, signal.SIGKILL)
        return run_id

    # What the catalog serves, read from the catalog itself (not through the proxy)

    def client(self) -> UdataClient:
        return UdataClient(self.catalog_url, self.key)

    def datasets(self) -> list[dict]:
        return find_datasets(self.client(), self.spec)

    def served(self) -> dict[str | None, str]:
        """sha256 of each file the catalog serves for the dataset, by role (None: no role)."""
        found = self.datasets()
        if not found:
            return {}
        served: dict[str | None, str] = {}
        for resource in found[0]["resources"]:
            response = requests.get(f"{self.catalog_url}/api/1/datasets/r/{resource['id']}", timeout=30)
            response.raise_for_status()
            served[(resource.get("extras") or {}).get(ROLE_EXTRA)] = sha256(response.content)
        return served

    def duplicates(self) -> list[str]:
        found = self.datasets()
        problems = [f"{len(found)} live datasets carry dinum:slug={SLUG}"] if len(found) != 1 else []
        for dataset in found:
            roles = Counter((resource.get("extras") or {}).get(ROLE_EXTRA) for resource in dataset["resources"])
            problems += [f"{count} resources with role {role}" for role, count in roles.items() if role and count > 1]
            if roles.get(None):
                problems.append(f"{roles[None]} resource(s) without a role")
        return problems

    def local(self) -> dict[str | None, str]:
        """sha256 of the clean files the pipeline publishes, by role."""
        files = self.layout.clean_files(SLUG).published_files()
        return {role: sha256(path.read_bytes()) for role, path in files.items()}

    def sha256_extras(self) -> dict[str | None, str]:
        found = self.datasets()
        return {(r.get("extras") or {}).get(ROLE_EXTRA): (r.get("extras") or {}).get(SHA256_EXTRA) for r in found[0]["resources"]} if found else {}

    def logged_everywhere(self) -> str:
        """Every message of every run of this scene's instance (and what `dagster` printed), and
        the catalog's log."""
        events = [event for record in self.instance.get_run_records() for event in self.instance.all_logs(record.dagster_run.run_id)]
        messages = [event.message or "" for event in events]
        messages += [error_chain(event.dagster_event.event_specific_data.error) for event in events if event.dagster_event_type == dg.DagsterEventType.STEP_FAILURE]
        cli_log = self.root / "dagster-cli.log"
        printed = [cli_log.read_text(encoding="utf-8", errors="replace")] if cli_log.exists() else []
        return "\n".join([*messages, *printed, *self.bench.catalog_log()])

    # The four judgements

    def judge_intact(self, row: Row, before: dict[str | None, str]) -> None:
        """Each file served before is still served or replaced by the complete new file, and
        every file served is a complete one (never a partial upload)."""
        now, new = self.served(), self.local()
        kept = all(now.get(role) in (sha, new.get(role)) for role, sha in before.items())
        complete = set(now.values()) <= set(before.values()) | set(new.values())
        row.judge(INTACT, kept and complete, f"before {before}, now {now}, new files {new}")

    def judge_duplicates(self, row: Row) -> None:
        problems = self.duplicates()
        row.judge(NO_DUPLICATE, not problems, problems)

    def judge_error(self, row: Row, where: str, *needles: str) -> None:
        """`where` says where people see the error; each needle must be in a message there."""
        row.where = where
        logged = self.logged_everywhere()
        missing = [needle for needle in needles if needle not in logged]
        row.judge(ERROR_SHOWN, not missing, f"not in the run's log nor the catalog's: {missing}")
        row.judge(ERROR_SHOWN, self.key not in logged, "the API key is in a message")

    def judge_killed_run(self, row: Row, run_id: str, where_else: str = "", *needles: str) -> None:
        """Dagster marks the run failed, and its log shows what the step was doing when it died."""
        status = self.instance.get_run_by_id(run_id).status
        row.judge(ERROR_SHOWN, status == dg.DagsterRunStatus.FAILURE, f"the killed run is {status}")
        where = "run FAILURE: 'publishing to the catalog at …', then the step 'was terminated by signal 9'"
        self.judge_error(row, where + where_else, f"publishing to the catalog at {self.proxy.url}", "was terminated by signal 9 (SIGKILL)", *needles)

    def judge_converged(self, row: Row, result: dg.ExecuteInProcessResult) -> None:
        served, new, extras = self.served(), self.local(), self.sha256_extras()
        ok = result.success and served == new and extras == new and not self.duplicates()
        row.judge(CONVERGED, ok, f"run {'ok' if result.success else failure(result)}, served {served}, new files {new}, sha256 extras {extras}")


def error_chain(error: Any) -> str:
    """An error and what caused it (Dagster's SerializableErrorInfo), as the UI shows a step failure."""
    messages = []
    while error is not None:
        messages.append(error.message.strip())
        error = error.cause
    return "\n".join(messages)


def publisher_key(store: CatalogStore) -> str:
    """A key of a member of the dataset's organization, as the pipeline's deployment has one."""
    return bootstrap_demo_publisher(store, "publisher@test.local", {ORGANIZATION: "Collectivité de test"})


def failure(result: dg.ExecuteInProcessResult) -> str:
    """The run's first step failure, as its event log shows it."""
    failures = result.get_step_failure_events()
    return error_chain(failures[0].event_specific_data.error) if failures else ""


@dataclass
class Bench:
    """What every case shares: the administrations' server, the registry, a folder, the logs."""

    administrations: RunningAdministrations
    sources: Path
    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    caplog: pytest.LogCaptureFixture
    extra_logs: list[Path] = field(default_factory=list)  # logs of catalog processes

    def catalog_log(self) -> list[str]:
        lines = [record.getMessage() for record in self.caplog.records if record.name.startswith(CATALOG_LOGGER)]
        for path in self.extra_logs:
            lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
        return lines

    @contextmanager
    def catalog(self, settings: CatalogSettings | None = None, name: str = "catalog") -> Iterator[tuple[RunningCatalog, str]]:
        """A catalog in a thread (SQLite in a folder by default) and a publisher's key."""
        with serve_in_thread(settings or CatalogSettings.in_directory(self.tmp / name)) as running:
            yield running, publisher_key(running.store)

    @contextmanager
    def scene(self, name: str, catalog_url: str, key: str) -> Iterator[Scene]:
        scene = Scene(self, name, catalog_url, key)
        try:
            yield scene
        finally:
            scene.close()

    @contextmanager
    def sqlite_scene(self, name: str) -> Iterator[Scene]:
        """A scene whose catalog runs in a thread, on SQLite."""
        with self.catalog(name=name) as (catalog, key), self.scene(name, catalog.url, key) as scene:
            yield scene


# The cases


def catalog_answers_503(bench: Bench, row: Row) -> None:
    with bench.sqlite_scene("c503") as scene:
        before = scene.publish_version(1)
        scene.proxy.answer(503, method="PUT")  # from the first file's metadata on
        bench.administrations.publish(SOURCE_PATH, source_file(2))
        result = scene.run()
        answered = sum(seen.action == "answered 503" for seen in scene.proxy.seen)
        row.happened = f"503 to every PUT ({answered}) once the new CSV was in: its update retried 3 times with backoff, run failed"
        message = failure(result)
        scene.judge_intact(row, before)
        scene.judge_duplicates(row)
        scene.judge_error(row, "step failure: 'catalog PUT …/resources/…/ -> HTTP 503 after 3 retries'", f"catalog PUT {scene.proxy.url}/api/1/datasets/", "-> HTTP 503 after 3 retries")
        row.judge(ERROR_SHOWN, "HTTP 503 after 3 retries" in message, message)
        scene.proxy.clear()
        scene.judge_converged(row, scene.run())


def catalog_unreachable(bench: Bench, row: Row) -> None:
    with bench.sqlite_scene("cdown") as scene:
        before = scene.publish_version(1)
        scene.proxy.drop()
        bench.administrations.publish(SOURCE_PATH, source_file(2))
        result = scene.run()
        dropped = sum(seen.action == "dropped" for seen in scene.proxy.seen)
        row.happened = f"every connection closed unanswered ({dropped}): the lookup retried 3 times with backoff, run failed"
        scene.judge_intact(row, before)
        scene.judge_duplicates(row)
        scene.judge_error(row, "step failure: 'catalog GET …/datasets/ -> no answer after 3 retries'", f"catalog GET {scene.proxy.url}/api/1/organizations/{ORGANIZATION}/datasets/", "-> no answer after 3 retries")
        row.judge(ERROR_SHOWN, "no answer after 3 retries" in failure(result), failure(result))
        scene.proxy.clear()
        scene.judge_converged(row, scene.run())


class CatalogProcess:
    """`python -m dinum_pipelines.catalog serve` on SQLite and a files folder, logging to a file."""

    def __init__(self, home: Path, log: Path) -> None:
        self.settings = CatalogSettings.in_directory(home)
        self.files = self.settings.files_dir
        self.storage = ["--database-url", self.settings.database_url, "--files-dir", str(self.files)]
        self.log = log
        self.process: subprocess.Popen | None = None
        self.url = ""

    def command(self, *arguments: str) -> list[str]:
        return [sys.executable, "-m", "dinum_pipelines.catalog", *arguments, *self.storage]

    def bootstrap(self) -> str:
        with CatalogStore(self.settings) as store:
            return publisher_key(store)

    def start(self) -> str:
        port = free_port()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command("serve", "--port", str(port), "--no-access-log"), stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        self.url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert self.process is not None and self.process.poll() is None, f"the catalog process exited; see {self.log}"
            try:
                return requests.get(f"{self.url}/api/1/datasets/licenses/", timeout=2).ok
            except requests.ConnectionError:
                return False

        wait_until(answers, "the catalog process to answer")
        return self.url

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


def catalog_killed_mid_upload(bench: Bench, row: Row) -> None:
    home = bench.tmp / "ckill"
    catalog = CatalogProcess(home / "catalog", home / "catalog.log")
    bench.extra_logs.append(catalog.log)
    try:
        key = catalog.bootstrap()
        with bench.scene("ckill", catalog.start(), key) as scene:
            before = scene.publish_version(1)
            held = scene.proxy.hold_body(method="POST", path=UPLOAD)

            def kill_when_held() -> None:
                try:
                    held.held.wait(WAIT_SECONDS)
                    wait_until(lambda: any(catalog.files.rglob(".*.part")), "the catalog to be writing the upload")
                    catalog.kill()
                finally:
                    scene.proxy.release(held)  # the rest of the body meets a dead catalog

            killer = threading.Thread(target=kill_when_held)
            killer.start()
            bench.administrations.publish(SOURCE_PATH, source_file(2))
            result = scene.run()
            killer.join()
            row.happened = "SIGKILL of the catalog with half the new CSV received, run failed; catalog restarted"
            scene.catalog_url = scene.proxy.upstream = catalog.start()
            scene.judge_intact(row, before)
            scene.judge_duplicates(row)
            scene.judge_error(
                row, "step failure: 'catalog POST …/upload/ -> no answer'; catalog log at restart: 1 partial upload kept",
                f"catalog POST {scene.proxy.url}/api/1/datasets/", "/upload/ -> no answer", "1 younger than 24 h kept",
            )
            row.judge(ERROR_SHOWN, "no answer" in failure(result), failure(result))
            scene.judge_converged(row, scene.run())
    finally:
        catalog.stop()


def run_killed_mid_upload(bench: Bench, row: Row) -> None:
    with bench.sqlite_scene("rkill") as scene:
        before = scene.publish_version(1)
        bench.administrations.publish(SOURCE_PATH, source_file(2))
        assert scene.run(until_checked=True).success
        run_id = scene.kill_publishing_run(scene.proxy.hold_body(method="POST", path=UPLOAD))
        wait_until(lambda: any("went away" in line for line in bench.catalog_log()), "the catalog to see the upload end")
        row.happened = "SIGKILL of the run's publishing process with half the new CSV sent"
        scene.judge_intact(row, before)
        scene.judge_duplicates(row)
        scene.judge_killed_run(row, run_id, "; catalog log: client went away, nothing changed", "the client went away before sending its whole body")
        scene.judge_converged(row, scene.run())


def run_killed_after_upload(bench: Bench, row: Row) -> None:
    """The first publication: the catalog took the CSV, the run died before giving it its role."""
    with bench.sqlite_scene("rorphan") as scene:
        bench.administrations.publish(SOURCE_PATH, source_file(3))
        assert scene.run(until_checked=True).success
        run_id = scene.kill_publishing_run(scene.proxy.hold_answer(method="POST", path=UPLOAD))
        row.happened = "1st publication: SIGKILL of the run's process once the CSV was stored, before its role was set"
        scene.judge_intact(row, {})
        scene.judge_killed_run(row, run_id)
        result = scene.run()
        scene.judge_duplicates(row)  # after the next run: it must adopt the CSV, not upload another
        row.judge(NO_DUPLICATE, any("adopted resource" in str(event.message) for event in scene.instance.all_logs(result.run_id)), "no adoption logged")
        scene.judge_converged(row, result)


def two_runs_at_once(bench: Bench, row: Row) -> None:
    """A run in a process of its own uploads (held half-way) when a second run, in this process,
    starts publishing the same dataset: the pool must hold the second back until the first ends."""
    with bench.sqlite_scene("pool") as scene:
        before = scene.publish_version(1)
        bench.administrations.publish(SOURCE_PATH, source_file(2))
        assert scene.run(until_checked=True).success
        held = scene.proxy.hold_body(method="POST", path=UPLOAD)
        blocked = f"Step blocked by limit for pool {publication_pool(SLUG)}"

        def release_once_the_second_waits(arrived: int) -> None:
            try:
                wait_until(lambda: blocked in scene.logged_everywhere(), "the second run to wait for the pool")
                row.judge(NO_DUPLICATE, len(scene.proxy.arrived) == arrived, "the second run reached the catalog during the first's upload")
                scene.judge_intact(row, before)  # the first run's upload still held
            except Exception as exc:  # recorded: the first run must be released whatever happens
                row.judge(NO_DUPLICATE, False, repr(exc))
            finally:
                scene.proxy.release(held)

        with scene.materialize_in_a_process() as first:
            wait_until(lambda: held.held.is_set() or first.poll() is not None, "the first run's upload to be held")
            releaser = threading.Thread(target=release_once_the_second_waits, args=(len(scene.proxy.arrived),))
            releaser.start()
            second = scene.run(published_only=True)
            releaser.join()
            first.wait(WAIT_SECONDS)
        row.happened = "a 2nd run of the dataset started while a 1st (own process) was uploading"
        row.judge(CONVERGED, second.success and first.returncode == 0, f"first run's process exit {first.returncode}, second run {failure(second) or 'ok'}")
        scene.judge_duplicates(row)
        scene.judge_error(row, f"2nd run's log: '{blocked}'", blocked)
        second_actions = [event.message for event in scene.instance.all_logs(second.run_id) if event.message and event.message.startswith(f"{SLUG}: ")]
        row.judge(CONVERGED, any("unchanged csv" in message for message in second_actions), second_actions)
        scene.judge_converged(row, scene.run())


def two_publishers_race(bench: Bench, row: Row) -> None:
    with bench.sqlite_scene("race") as scene:
        bench.administrations.publish(SOURCE_PATH, source_file(4))
        assert scene.run(until_checked=True).success
        scene.proxy.gate(2, method="POST", path=r"/api/1/datasets/$")  # both create the dataset
        scene.proxy.gate(2, method="POST", path=UPLOAD)  # both upload the first file
        results = []
        errors = []

        def publisher() -> None:
            try:
                results.append(publish_clean_files(scene.spec, scene.layout, UdataClient(scene.proxy.url, scene.key)))
            except Exception as exc:  # recorded for the table
                errors.append(repr(exc))

        threads = [threading.Thread(target=publisher) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        creates = sum(seen.method == "POST" and seen.path == "/api/1/datasets/" for seen in scene.proxy.seen)
        row.happened = f"2 publishers (lib, 2 threads, no pool) created the dataset ({creates} creates) and uploaded at once"
        scene.judge_intact(row, {})
        scene.judge_duplicates(row)
        row.judge(CONVERGED, not errors and len({(r.dataset_id, tuple(sorted(r.resource_ids.items()))) for r in results}) == 1, errors or [r.actions for r in results])
        resolved = [action for result in results for action in result.actions if "duplicate" in action]
        row.where = "publication actions (run log): 'deleted dataset …, a duplicate created concurrently'"
        row.judge(ERROR_SHOWN, creates == 2, f"{creates} creates: the race did not happen")
        row.judge(ERROR_SHOWN, any("a duplicate created concurrently" in action for action in resolved), [r.actions for r in results])
        scene.judge_converged(row, scene.run(published_only=True))


class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb in a temporary folder), to restart at will."""

    def __init__(self) -> None:
        bindir = subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True).stdout.strip()
        self.bin = Path(bindir)
        self.folder = Path(tempfile.mkdtemp(prefix="dinum-fault-pg-"))
        # PostgreSQL refuses to run as root: a root test runs it as the `postgres` user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.folder, "postgres")
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, program: str, *arguments: str) -> None:
        subprocess.run([*self.as_user, str(self.bin / program), *arguments], check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.folder, ignore_errors=True)


class Prober(threading.Thread):
    """Reads the catalog's API and pages in a loop, as reusers would, recording every answer."""

    def __init__(self, urls: list[str]) -> None:
        super().__init__(daemon=True)
        self.urls = urls
        self.answers: list[tuple[str, int, str]] = []
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            for url in self.urls:
                try:
                    response = requests.get(url, timeout=10)
                except requests.RequestException as exc:
                    self.answers.append((url, 0, repr(exc)))
                    continue
                self.answers.append((url, response.status_code, response.text[:300]))

    def stop(self) -> None:
        self._stopping.set()
        self.join()

    def unclean(self) -> list[tuple[str, int, str]]:
        """Answers other than a success or a clean 503 (udata's JSON body, or the error page)."""
        def clean(url: str, status: int, body: str) -> bool:
            if status == 200:
                return True
            if status != 503:
                return False
            if "/api/" not in url:
                return "<html" in body.lower()
            document = json.loads(body)
            return document.get("status") == 503 and bool(document.get("message"))

        return [answer for answer in self.answers if not clean(*answer)]


def postgres_restarted(bench: Bench, row: Row) -> None:
    server = PrivatePostgres()
    try:
        server.start()
        settings = CatalogSettings(server.url, bench.tmp / "pg" / "files")
        with bench.catalog(settings) as (catalog, key), bench.scene("pg", catalog.url, key) as scene:
            before = scene.publish_version(1)
            dataset = scene.datasets()[0]
            prober = Prober([f"{catalog.api_url}/datasets/{dataset['id']}/", f"{catalog.url}/datasets/{dataset['slug']}/", f"{catalog.api_url}/datasets/?q=compteurs"])
            prober.start()
            wait_until(lambda: len(prober.answers) > 3, "the prober's first answers")
            server.stop()
            bench.administrations.publish(SOURCE_PATH, source_file(2))
            result = scene.run()
            wait_until(lambda: any(status == 503 for _, status, _ in prober.answers), "a reader to meet the stopped database")
            server.start()
            served_again = requests.get(f"{catalog.api_url}/datasets/{dataset['id']}/", timeout=10).status_code
            prober.stop()
            statuses = Counter(status for _, status, _ in prober.answers)
            row.happened = f"stopped and started under the catalog, a run publishing meanwhile; readers got {dict(sorted(statuses.items()))}"
            row.judge(ERROR_SHOWN, not prober.unclean(), prober.unclean()[:3])
            row.judge(CONVERGED, served_again == 200, f"the first request after the restart got {served_again}")
            scene.judge_intact(row, before)
            scene.judge_duplicates(row)
            scene.judge_error(
                row, "step failure: 'catalog GET … -> HTTP 503 after 3 retries: The catalog's database is unavailable…'; catalog log: '503, the database is unavailable'",
                "-> HTTP 503 after 3 retries", "The catalog's database is unavailable", "503, the database is unavailable (OperationalError",
            )
            row.judge(ERROR_SHOWN, "database is unavailable" in failure(result), failure(result))
            scene.judge_converged(row, scene.run())
    finally:
        server.remove()


def metrics_push_interrupted(bench: Bench, row: Row) -> None:
    with bench.catalog(name="metrics") as (catalog, key):
        sysadmin = bootstrap_metrics_sysadmin(catalog.store, "metrics@test.local", monitoring_organization())
        bench.monkeypatch.setenv(METRICS_API_KEY_VAR, sysadmin)
        with bench.scene("metrics", catalog.url, key) as scene:
            before = scene.publish_version(1)
            datasets = scene.datasets()
            payload_file = catalog_payload_file(MetricsLayout(scene.layout.root))
            payload_file.parent.mkdir(parents=True)
            push = scene.defs.resolve_job_def(ROLLUP_JOB)

            def push_views(views: int) -> dg.ExecuteInProcessResult:
                payload_file.write_text(json.dumps(sample_payload(datasets, views=views)), encoding="utf-8")
                return push.execute_in_process(instance=scene.instance, raise_on_error=False, run_config=QUIET_RUN_CONFIG, asset_selection=[CATALOG_METRICS_KEY])

            assert push_views(3).success
            anonymous = Api(catalog)
            figures = catalog_figures(anonymous, datasets)
            held = scene.proxy.hold_body(method="PUT", path=r"/metrics/$")
            scene.proxy.drop(method="PUT", path=r"/metrics/$")  # and its retries find the catalog gone
            cutter = threading.Thread(target=lambda: held.held.wait(WAIT_SECONDS) and scene.proxy.release(held, cut=True))
            cutter.start()
            result = push_views(7)
            cutter.join()
            row.happened = "the push's connection cut half-way, every retry dropped; run failed"
            unchanged = catalog_figures(anonymous, datasets) == figures
            scene.judge_intact(row, before)
            row.judge(INTACT, unchanged, "the figures changed")
            scene.judge_duplicates(row)
            scene.judge_error(
                row, "step failure: 'catalog PUT …/metrics/ -> no answer after 3 retries'; catalog log: client went away, nothing changed",
                f"catalog PUT {scene.proxy.url}/api/1/metrics/ -> no answer after 3 retries", "the client went away before sending its whole body; nothing was changed",
            )
            row.judge(ERROR_SHOWN, "no answer after 3 retries" in failure(result), failure(result))
            scene.proxy.clear()
            again = push_views(7)
            views = catalog_figures(anonymous, datasets)[datasets[0]["id"]]["views"]
            row.judge(CONVERGED, again.success and views == 14, f"run {failure(again) or 'ok'}, views {views} (14 expected)")


CASES: list[tuple[str, Callable[[Bench, Row], None]]] = [
    ("1a catalog answers 503", catalog_answers_503),
    ("1b catalog unreachable", catalog_unreachable),
    ("2 catalog killed mid-upload", catalog_killed_mid_upload),
    ("3a run killed mid-upload", run_killed_mid_upload),
    ("3b run killed after an upload", run_killed_after_upload),
    ("4a two runs at once (Dagster)", two_runs_at_once),
    ("4b two publishers at once (lib)", two_publishers_race),
    ("5 PostgreSQL restarted", postgres_restarted),
    ("6 metrics push interrupted", metrics_push_interrupted),
]


def test_fault_matrix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Every case runs, whatever the others did; the table says which mark of which case failed and why."""
    caplog.set_level(logging.INFO, logger=CATALOG_LOGGER)
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / f"{SLUG}.yaml").write_text(REGISTRY_FILE, encoding="utf-8")
    rows = []
    with serve_administrations(files={}) as administrations:
        bench = Bench(administrations, sources, tmp_path, monkeypatch, caplog)
        for name, case in CASES:
            row = Row(name)
            started = time.monotonic()
            try:
                case(bench, row)
            except Exception:
                row.notes.append(f"the case stopped: {traceback.format_exc()}")
            row.happened += f" [{time.monotonic() - started:.0f} s]"
            rows.append(row)
    printed = table(rows)
    print(printed)
    assert all(row.green for row in rows), printed
