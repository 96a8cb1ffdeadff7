"""Dagster on several machines, started on this one, in one command:

    python -m dinum_pipelines.deploy.celery_cluster up [--home .dinum/celery] [--workers 3] [--no-demo]

Why it exists: a dataset's steps must be able to run on any machine, and a machine may die
mid-step; this starts that shape locally, for a newcomer and for the tests
(dinum_pipelines_tests/e2e/test_celery_deployment.py), from the same code. Each process below
runs in its own working directory under --home, as it would on its own machine:

- the S3-compatible object store holding the raw store and the clean files: moto's S3 server on a
  free loopback port, unless DINUM_RAW_STORE_URL and DINUM_CLEAN_STORE_URL name a real one (with
  AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment);
- the code server (`dagster api grpc`), which starts each run's process;
- the daemon: the run queue (QueuedRunCoordinator, at most two runs per administration,
  deploy/celery/dagster.yaml), run monitoring, sensors and schedules;
- the webserver (UI and GraphQL), unless --no-webserver;
- N workers (`dagster-celery worker start`), each with its own DAGSTER_HOME and DINUM_DATA_DIR,
  taking the steps from the broker (deploy/celery/celery.yaml).

PostgreSQL (the instance's storage) and RabbitMQ (the broker) are services it uses, not starts:
DINUM_DAGSTER_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/dinum_dagster; the
database is created when missing) and DINUM_CELERY_BROKER_URL (default
amqp://guest:guest@127.0.0.1:5672//). `up` also serves the demo administrations and a local
catalog in its own process (as `make demo` does) unless --no-demo, in which case
DINUM_CATALOG_URL and DINUM_CATALOG_API_KEY must point at a catalog. It prints where everything
is, then serves until Ctrl-C, which stops every process it started.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dinum_pipelines.defs.deployment import CELERY_CONFIG_VAR, DEFAULT_CELERY_CONFIG, EXECUTOR_VAR

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "celery"
INSTANCE_SETTINGS = DEPLOY_DIR / "dagster.yaml"
POSTGRES_URL_VAR = "DINUM_DAGSTER_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/dinum_dagster"
BROKER_URL_VAR = "DINUM_CELERY_BROKER_URL"
DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
LOCATION_NAME = "dinum_pipelines"
# The broker queue of the steps (a deployment's workers take only its own runs' steps).
DEFAULT_QUEUE = "dinum_pipelines"
S3_BUCKET = "dinum"
# moto accepts any key; these only stand in for real credentials when moto is the store.
MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "moto-local", "AWS_SECRET_ACCESS_KEY": "moto-local", "AWS_DEFAULT_REGION": "us-east-1"}
START_TIMEOUT = 60.0


class DeploymentError(RuntimeError):
    """A service the deployment needs is missing, or one of its processes did not start."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _bin(name: str) -> str:
    """A command installed beside this Python (the project's virtualenv)."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")))


def _reachable(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=2):
        return True
    return False


def ensure_postgres_database(url: str) -> None:
    """Create the instance's database when it does not exist (a fresh local setup)."""
    target = make_url(url)
    server = create_engine(target.set(drivername="postgresql+psycopg", database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}).first()
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    except Exception as exc:
        raise DeploymentError(
            f"PostgreSQL is not usable at {target.render_as_string(hide_password=True)} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0]}): the Dagster instance needs it; set {POSTGRES_URL_VAR}"
        ) from None
    finally:
        server.dispose()


def postgres_env(url: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables deploy/celery/dagster.yaml reads."""
    parsed = make_url(url)
    return {
        "DAGSTER_PG_HOST": parsed.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(parsed.port or 5432),
        "DAGSTER_PG_USER": parsed.username or "postgres",
        "DAGSTER_PG_PASSWORD": parsed.password or "",
        "DAGSTER_PG_DB": parsed.database or "dinum_dagster",
    }


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path
    directory: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 25) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


@dataclass
class CeleryCluster:
    """The deployment's processes under `home`; `start()` (or `with`), then `stop()`.

    `env`: variables every process gets on top of this one's environment (the catalog's URL and
    key, the registry folder...). The S3 store is moto's unless `env` or the environment name
    the two stores."""

    home: Path
    workers: int = 3
    webserver: bool = True
    env: Mapping[str, str] = field(default_factory=dict)
    postgres_url: str = field(default_factory=lambda: os.environ.get(POSTGRES_URL_VAR) or DEFAULT_POSTGRES_URL)
    broker_url: str = field(default_factory=lambda: os.environ.get(BROKER_URL_VAR) or DEFAULT_BROKER_URL)
    celery_config: Path = field(default_factory=lambda: Path(os.environ.get(CELERY_CONFIG_VAR) or DEFAULT_CELERY_CONFIG))
    # Two deployments on one broker (the tests beside a developer's) stay apart by their queue
    # and their workers' names.
    queue: str = DEFAULT_QUEUE

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()
        self.processes: dict[str, Process] = {}
        self.s3_endpoint: str | None = None
        self.webserver_port: int | None = None
        self.shared_env: dict[str, str] = {}

    # ------------------------------------------------------------------ what the others read

    @property
    def dagster_home(self) -> Path:
        """The control machine's DAGSTER_HOME (code server, daemon, webserver)."""
        return self.home / "control" / "dagster_home"

    @property
    def webserver_url(self) -> str:
        if self.webserver_port is None:
            raise DeploymentError("the webserver was not started")
        return f"http://127.0.0.1:{self.webserver_port}"

    @property
    def worker_names(self) -> list[str]:
        return [f"w{index}" for index in range(1, self.workers + 1)]

    def worker(self, name: str) -> Process:
        return self.processes[f"worker-{name}"]

    def node_name(self, name: str) -> str:
        """The worker's Celery node name (before the `@host`), as Dagster's events show it."""
        return f"{self.queue}.{name}"

    def worker_of_node(self, hostname: str) -> str:
        """The worker's name (`w1`) from the node name Dagster's events show (`<queue>.w1@host`)."""
        return hostname.split("@")[0].removeprefix(f"{self.queue}.")

    def worker_directory(self, name: str) -> Path:
        return self.home / "workers" / name

    @contextlib.contextmanager
    def instance(self) -> Iterator:
        """The Dagster instance (PostgreSQL), for a client in this process."""
        import dagster as dg

        saved = {key: os.environ.get(key) for key in (*postgres_env(self.postgres_url), "DAGSTER_COMPUTE_LOGS_DIR", "DAGSTER_HOME")}
        os.environ.update(self._instance_env(self.dagster_home))
        try:
            with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
                yield instance
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    # ------------------------------------------------------------------ starting and stopping

    def __enter__(self) -> CeleryCluster:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        broker = urlsplit(self.broker_url)
        if not _reachable(broker.hostname or "127.0.0.1", broker.port or 5672):
            raise DeploymentError(
                f"RabbitMQ is not reachable at {broker.hostname}:{broker.port or 5672}: the Celery broker is needed; "
                f"start it or set {BROKER_URL_VAR}"
            )
        ensure_postgres_database(self.postgres_url)
        self.home.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, **self.env}
        stores = {key: environment.get(key) for key in ("DINUM_RAW_STORE_URL", "DINUM_CLEAN_STORE_URL")}
        # The settings file every process reads: the shipped one, with this deployment's queue.
        settings = yaml.safe_load(self.celery_config.read_text(encoding="utf-8"))
        settings["execution"]["config"].setdefault("config_source", {})["task_default_queue"] = self.queue
        celery_config = self.home / "celery.yaml"
        celery_config.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
        self.shared_env = {
            EXECUTOR_VAR: "celery",
            CELERY_CONFIG_VAR: str(celery_config),
            BROKER_URL_VAR: self.broker_url,
            **postgres_env(self.postgres_url),
            **self.env,
        }
        control = self.home / "control"
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(INSTANCE_SETTINGS, self.dagster_home / "dagster.yaml")
        # The instance's tables are created here, once: processes starting together on an empty
        # database would race to create them (and one would fail on a duplicate type).
        with self.instance():
            pass
        if not all(stores.values()):
            self._start_moto()
        for name in self.worker_names:
            self._start_worker(name)
        grpc_port = free_port()
        workspace = control / "workspace.yaml"
        workspace.write_text(
            yaml.safe_dump({"load_from": [{"grpc_server": {"host": "127.0.0.1", "port": grpc_port, "location_name": LOCATION_NAME}}]}),
            encoding="utf-8",
        )
        code_server = self._spawn(
            "code-server",
            [_bin("dagster"), "api", "grpc", "-m", "dinum_pipelines.definitions", "-h", "127.0.0.1", "-p", str(grpc_port)],
            control / "code_server",
            self.dagster_home,
        )
        self._wait(code_server, lambda: _reachable("127.0.0.1", grpc_port), "its gRPC port to open")
        self._spawn("daemon", [_bin("dagster-daemon"), "run", "-w", str(workspace)], control / "daemon", self.dagster_home)
        if self.webserver:
            self.webserver_port = free_port()
            webserver = self._spawn(
                "webserver",
                [_bin("dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(self.webserver_port)],
                control / "webserver",
                self.dagster_home,
            )
            self._wait(webserver, self._webserver_ready, "its /server_info to answer")
        for name in self.worker_names:
            worker = self.worker(name)
            self._wait(worker, lambda w=worker: " ready." in w.tail(200), "'ready.' in its log")

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL for those still there after 10 s)."""
        for process in self.processes.values():
            if process.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGKILL)
            process.popen.wait()

    def delete_queue(self) -> None:
        """Remove this deployment's queue from the broker (a throwaway deployment's, after `stop`)."""
        from kombu import Connection

        with Connection(self.broker_url) as connection:
            connection.default_channel.queue_delete(self.queue)

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker and its pool's processes at once: its machine lost, nothing cleaned up."""
        os.killpg(self.worker(name).popen.pid, signal.SIGKILL)
        self.worker(name).popen.wait()

    # ------------------------------------------------------------------ the pieces

    def _instance_env(self, dagster_home: Path) -> dict[str, str]:
        return {
            **postgres_env(self.postgres_url),
            "DAGSTER_HOME": str(dagster_home),
            "DAGSTER_COMPUTE_LOGS_DIR": str(dagster_home / "compute_logs"),
        }

    def _spawn(self, name: str, command: list[str], directory: Path, dagster_home: Path, extra: Mapping[str, str] = {}) -> Process:
        directory.mkdir(parents=True, exist_ok=True)
        log = self.home / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.shared_env, **self._instance_env(dagster_home), **extra}
        # `dagster-celery worker start` runs `celery` from the PATH: this virtualenv's first.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        with log.open("ab") as output:
            # A session of its own: stopping (or killing) it reaches its children, and Ctrl-C on
            # `up` reaches only `up`, which then stops everything in order.
            popen = subprocess.Popen(command, cwd=directory, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        process = Process(name, popen, log, directory)
        self.processes[name] = process
        return process

    def _wait(self, process: Process, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not process.alive():
                raise DeploymentError(f"{process.name} exited ({process.popen.returncode}) before {what}; its log:\n{process.tail()}")
            if ready():
                return
            time.sleep(0.2)
        raise DeploymentError(f"{process.name} not ready after {START_TIMEOUT:.0f} s (waiting for {what}); its log:\n{process.tail()}")

    def _webserver_ready(self) -> bool:
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"{self.webserver_url}/server_info", timeout=2).ok
        return False

    def _start_moto(self) -> None:
        port = free_port()
        moto = self._spawn("s3", [_bin("moto_server"), "-H", "127.0.0.1", "-p", str(port)], self.home / "s3", self.home / "s3")
        self.s3_endpoint = f"http://127.0.0.1:{port}"
        self._wait(moto, lambda: _reachable("127.0.0.1", port), "its port to open")
        self.shared_env.update(
            {
                **MOTO_CREDENTIALS,
                "AWS_ENDPOINT_URL": self.s3_endpoint,
                "DINUM_RAW_STORE_URL": f"s3://{S3_BUCKET}/raw",
                "DINUM_CLEAN_STORE_URL": f"s3://{S3_BUCKET}/clean",
            }
        )
        requests.put(f"{self.s3_endpoint}/{S3_BUCKET}", timeout=10).raise_for_status()

    def _start_worker(self, name: str) -> None:
        directory = self.worker_directory(name)
        dagster_home = directory / "dagster_home"
        dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(INSTANCE_SETTINGS, dagster_home / "dagster.yaml")
        command = [
            _bin("dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", self.shared_env[CELERY_CONFIG_VAR],
            "-n", self.node_name(name), "-q", self.queue, "-l", "INFO",
            # One step at a time per worker; no start-up handshakes with the other workers.
            "--", "--concurrency=1", "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        self._spawn(f"worker-{name}", command, directory, dagster_home, {"DINUM_DATA_DIR": str(directory / "data")})


# ---------------------------------------------------------------------- `up`


def _serve_demo(cluster_env: dict[str, str], home: Path):
    """The demo administrations and a local catalog in this process, with a publisher's key."""
    from dinum_pipelines.catalog.server import serve_in_thread
    from dinum_pipelines.catalog.settings import CatalogSettings
    from dinum_pipelines.demo.runner import bootstrap_demo_publisher
    from dinum_pipelines.demo.server import ADMIN_URL_ENV, serve_administrations
    from dinum_pipelines.lib.declare.registry import load_registry

    registry = load_registry(os.environ.get("DINUM_SOURCES_DIR"))
    administrations = serve_administrations(port=0)
    catalog = serve_in_thread(CatalogSettings.in_directory(home / "catalog"), port=0)
    organizations = {spec.organization.slug: spec.organization.name for spec in registry.values()}
    key = bootstrap_demo_publisher(catalog.store, "publication@celery.dinum.local", organizations)
    cluster_env.update({ADMIN_URL_ENV: administrations.url, "DINUM_CATALOG_URL": catalog.url, "DINUM_CATALOG_API_KEY": key})
    return administrations, catalog


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dinum_pipelines.deploy.celery_cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up"])
    parser.add_argument("--home", type=Path, default=Path(".dinum/celery"), help="where every process keeps its files")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--no-webserver", action="store_true")
    parser.add_argument("--no-demo", action="store_true", help="use DINUM_CATALOG_URL and the registry's own sources")
    args = parser.parse_args(argv)

    env: dict[str, str] = {}
    served = []
    if not args.no_demo:
        served = list(_serve_demo(env, args.home.resolve()))
    elif not os.environ.get("DINUM_CATALOG_URL") or not os.environ.get("DINUM_CATALOG_API_KEY"):
        parser.error("--no-demo needs DINUM_CATALOG_URL and DINUM_CATALOG_API_KEY")
    cluster = CeleryCluster(args.home, workers=args.workers, webserver=not args.no_webserver, env=env)
    try:
        cluster.start()
    except DeploymentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        for server in served:
            server.stop()
        return 1
    print(f"home (each process's folder, logs in logs/): {cluster.home}")
    print(f"instance: PostgreSQL {make_url(cluster.postgres_url).render_as_string(hide_password=True)}; DAGSTER_HOME {cluster.dagster_home}")
    print(f"broker: {without_password(cluster.broker_url)}")
    stores = cluster.shared_env.get("DINUM_RAW_STORE_URL"), cluster.shared_env.get("DINUM_CLEAN_STORE_URL")
    print(f"raw store: {stores[0]}; clean files: {stores[1]}" + (f" (moto's S3 server at {cluster.s3_endpoint})" if cluster.s3_endpoint else ""))
    print(f"workers: {', '.join(f'{name} in {cluster.worker_directory(name)}' for name in cluster.worker_names)}")
    if env:
        print(f"demo administrations: {env['DINUM_DEMO_ADMIN_URL']}; catalog: {env['DINUM_CATALOG_URL']}")
    if cluster.webserver:
        print(f"Dagster UI: {cluster.webserver_url} (launch a dataset's job; its steps run on the workers)")
    print("(serving; Ctrl-C to stop everything)", flush=True)
    # `kill` (SIGTERM) stops everything too, as Ctrl-C does: the processes have sessions of their own.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while all(process.alive() for process in cluster.processes.values()):
            time.sleep(1)
        dead = [p.name for p in cluster.processes.values() if not p.alive()]
        print(f"stopped: {', '.join(dead)} exited; see {cluster.home / 'logs'}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()
        for server in served:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
