"""The catalog on several nodes behind nginx, started with one command (issue 13, part 4).

    python -m dinum_pipelines.catalog.nodes --database-url postgresql+psycopg://postgres@127.0.0.1/catalog \\
        --files-dir /srv/catalog-files --nodes 2 --port 8080

starts N `dinum-catalog serve` processes, each on its own port as separate hosts would be, on
one database and one shared files folder, and nginx in front of them on `--port`, with the
configuration rendered from deploy/catalog-nodes/nginx.conf.template (round robin, keep-alive,
streamed uploads, a retry on the next node when one is down, files sent by nginx through
X-Accel-Redirect). Every node hands out URLs under nginx's address (DINUM_CATALOG_PUBLIC_URL),
never its own. Ctrl-C (or SIGTERM) stops nginx, then each node cleanly: a node's queued usage
events are written as it stops.

What the nodes share is the database (datasets, accounts, the usage log, the data version that
invalidates each process's anonymous-answer cache: response_cache.py) and the files folder. On
separate machines the folder is a shared filesystem (NFS, CephFS...) mounted at the same path on
every node and on nginx's host. The tests (dinum_pipelines_tests/e2e/test_catalog_nodes.py) start
the same thing with `run_catalog_nodes`.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from dinum_pipelines.catalog.settings import (
    ACCEL_REDIRECT_PREFIX_ENV,
    DATABASE_URL_ENV,
    FILES_DIR_ENV,
)

NGINX_TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "catalog-nodes" / "nginx.conf.template"
# Where nginx serves the shared files folder from, internally; what the nodes' redirects name.
ACCEL_PREFIX = "/_files/"
READY_PATH = "/api/1/datasets/licenses/"
STOP_TIMEOUT_SECONDS = 20.0
# How long nginx leaves a node alone after a failed connection (its upstream `fail_timeout`):
# short, so that a restarted node soon gets its share back, since while one node is left alone
# the other one failing too means no node at all ("no live upstreams", 502).
NODE_FAIL_TIMEOUT_SECONDS = 2
# A line of the template's `catalog_nodes` access log format.
_ACCESS_LOG_LINE = re.compile(r'"(?P<request>\S+ \S+) [^"]*" .* upstream=(?P<upstream>.*) upstream_status=')
START_TIMEOUT_SECONDS = 60.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now (the OS's pick); another process may take it before we bind it."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_until_answers(url: str, timeout: float = 30, *, process: subprocess.Popen[bytes] | None = None) -> None:
    """Return once `url` answers HTTP (any status); fail early if `process`, which should serve it, exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited ({process.returncode}) while starting")
        try:
            requests.get(url, timeout=1)
            return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or its first answer is slow
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """Hold the machine-wide lock `name` (an flock on a file in the temporary folder): for what a
    machine installs once, when several processes (pytest-xdist's, a bench beside the tests) may
    want it at the same moment."""
    with open(Path(tempfile.gettempdir()) / f"dinum-{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_debian_tool(name: str, package: str) -> str:
    """Path of `name`, installing the Debian package when missing and we may (root with apt-get)."""
    found = _which(name)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        with machine_lock("apt"):  # apt takes one process at a time; the others wait here, then find the tool
            found = _which(name)
            if not found:
                print(f"installing {package} (apt-get)...", file=sys.stderr)
                environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
                install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
                if subprocess.run(install, stdout=subprocess.DEVNULL, env=environment, check=False).returncode != 0:
                    # A fresh machine has no package lists yet.
                    subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL, env=environment, check=False)
                    subprocess.run(install, stdout=subprocess.DEVNULL, env=environment, check=True)
                found = _which(name)
    if not found:
        raise SystemExit(f"{name} is needed: install the Debian package {package} (apt-get install {package})")
    return found


def _which(name: str) -> str | None:
    """`name` on the PATH, or in the system folders a non-login PATH may lack (nginx is in /usr/sbin)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


def render_nginx_config(
    *, listen: str, node_addresses: Sequence[str], files_dir: Path, run_dir: Path,
    accel_prefix: str = ACCEL_PREFIX, template: Path = NGINX_TEMPLATE,
) -> str:
    """deploy/catalog-nodes/nginx.conf.template with its @NAME@ placeholders filled in."""
    servers = "\n".join(
        f"        server {address} max_fails=1 fail_timeout={NODE_FAIL_TIMEOUT_SECONDS}s;" for address in node_addresses
    )
    # As root, nginx's workers would run as nobody and could not read a root-only files folder.
    user = "user root;" if os.geteuid() == 0 else ""
    values = {
        "@USER_DIRECTIVE@": user, "@RUN_DIR@": str(run_dir), "@UPSTREAM_SERVERS@": servers, "@LISTEN@": listen,
        "@ACCEL_PREFIX@": accel_prefix, "@FILES_DIR@": str(Path(files_dir).resolve()),
    }
    text = template.read_text(encoding="utf-8")
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def _stop_process(process: subprocess.Popen[bytes], stop_signal: int, timeout: float) -> None:
    """Send `stop_signal` and wait; SIGKILL if it has not exited after `timeout` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(stop_signal)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class CatalogNode:
    """One `dinum-catalog serve` process; `start`, `stop` (clean) and `kill` (SIGKILL) it at will."""

    name: str
    host: str
    port: int
    command: list[str]
    environment: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def launch(self) -> None:
        """Start the process without waiting for it to answer (see wait_until_ready)."""
        with self.log_path.open("ab") as log:
            # Its own session: a Ctrl-C in the terminal reaches only main(), which stops things in order.
            self.process = subprocess.Popen(
                self.command, env=self.environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_until_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        try:
            wait_until_answers(self.url + READY_PATH, timeout, process=self.process)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"catalog node {self.name} did not start: {exc}\n{self.log_tail()}") from exc

    def start(self) -> None:
        self.launch()
        self.wait_until_ready()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """A clean stop (SIGTERM): uvicorn finishes the requests in flight, the node writes its queued events."""
        if self.process is not None:
            _stop_process(self.process, signal.SIGTERM, timeout)

    def kill(self) -> None:
        """A crash (SIGKILL): nothing is finished, nothing flushed."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:] if self.log_path.exists() else ""


@dataclass
class CatalogNodes:
    """N catalog nodes and the nginx in front of them; `url` is nginx's, the one to hand out."""

    url: str
    nodes: list[CatalogNode]
    run_dir: Path
    nginx_config: Path
    _nginx: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/1"

    def upstreams(self) -> list[tuple[str, str]]:
        """(method and path, node address) of every request nginx logged, in order; the address
        reads "a, b" when node a failed and b answered."""
        log = self.run_dir / "nginx-access.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [(found["request"], found["upstream"]) for found in map(_ACCESS_LOG_LINE.search, lines) if found]

    def restart(self, node: CatalogNode) -> None:
        """Start a stopped (or killed) node again; returns once nginx may send it requests again."""
        node.start()
        time.sleep(NODE_FAIL_TIMEOUT_SECONDS + 0.2)  # nginx's fail_timeout for the failures it saw while the node was down

    def stop(self) -> None:
        """nginx first (no new requests reach the nodes), then every node cleanly."""
        if self._nginx is not None:
            _stop_process(self._nginx, signal.SIGQUIT, STOP_TIMEOUT_SECONDS)  # SIGQUIT: nginx's graceful stop
        for node in self.nodes:
            node.stop()


def node_command(node_port: int, *, host: str, public_url: str, workers: int) -> list[str]:
    """`dinum-catalog serve` for one node; the database URL goes in its environment, not its
    command line, where any local user could read a password in it (ps)."""
    return [
        sys.executable, "-m", "dinum_pipelines.catalog", "serve", "--host", host, "--port", str(node_port),
        "--workers", str(workers), "--public-url", public_url,
        "--no-access-log",  # nginx logs every request already
    ]


@contextmanager
def run_catalog_nodes(
    database_url: str,
    files_dir: Path | str,
    *,
    nodes: int = 2,
    host: str = "127.0.0.1",
    port: int = 0,
    node_ports: Sequence[int] | None = None,
    workers_per_node: int = 1,
    public_url: str | None = None,
    run_dir: Path | str | None = None,
) -> Iterator[CatalogNodes]:
    """Start `nodes` catalog nodes and nginx in front of them; stop them all on leaving.

    Port 0 picks free ports. `public_url` is what clients reach nginx at (default: its own
    address); `run_dir` receives nginx's configuration, the logs and temporary folders (default:
    a temporary folder, removed on leaving)."""
    files_dir = Path(files_dir).resolve()
    files_dir.mkdir(parents=True, exist_ok=True)
    nginx_binary = ensure_debian_tool("nginx", "nginx")
    port = port or free_port(host)
    public_url = (public_url or f"http://{host}:{port}").rstrip("/")
    ports = list(node_ports) if node_ports else [free_port(host) for _ in range(nodes)]
    if len(ports) != nodes:
        raise ValueError(f"{nodes} nodes need {nodes} ports, got {ports}")
    with ExitStack() as stack:
        if run_dir is None:
            run_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="catalog-nodes-"))
        run_dir = Path(run_dir).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        environment = {
            **os.environ, DATABASE_URL_ENV: database_url, FILES_DIR_ENV: str(files_dir),
            ACCEL_REDIRECT_PREFIX_ENV: ACCEL_PREFIX,
        }
        catalog_nodes = [
            CatalogNode(
                f"node-{index + 1}", host, node_port,
                node_command(node_port, host=host, public_url=public_url, workers=workers_per_node),
                environment, run_dir / f"node-{index + 1}.log",
            )
            for index, node_port in enumerate(ports)
        ]
        config = run_dir / "nginx.conf"
        config.write_text(render_nginx_config(
            listen=f"{host}:{port}", node_addresses=[node.address for node in catalog_nodes], files_dir=files_dir, run_dir=run_dir,
        ))
        running = CatalogNodes(public_url, catalog_nodes, run_dir, config)
        stack.callback(running.stop)
        # Started together: each upgrades the schema if needed, one at a time (db.upgrade_to_head locks).
        for node in catalog_nodes:
            node.launch()
        for node in catalog_nodes:
            node.wait_until_ready()
        with (run_dir / "nginx.log").open("ab") as log:
            running._nginx = subprocess.Popen(
                [nginx_binary, "-p", str(run_dir), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_answers(f"http://{host}:{port}{READY_PATH}", process=running._nginx)
        yield running


def _wait_for_stop_signal() -> None:
    stopping = threading.Event()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: stopping.set())
    stopping.wait()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dinum_pipelines.catalog.nodes",
        description="The catalog on several nodes (one database, one files folder) behind nginx.",
    )
    parser.add_argument("--database-url", default=os.environ.get(DATABASE_URL_ENV),
                        help=f"the nodes' shared database, PostgreSQL (default: ${DATABASE_URL_ENV})")
    parser.add_argument("--files-dir", default=os.environ.get(FILES_DIR_ENV),
                        help=f"the shared files folder (default: ${FILES_DIR_ENV})")
    parser.add_argument("--nodes", type=int, default=2, help="how many catalog nodes (default 2)")
    parser.add_argument("--host", default="127.0.0.1", help="address nginx and the nodes listen on")
    parser.add_argument("--port", type=int, default=8080, help="nginx's port, the catalog's address (default 8080)")
    parser.add_argument("--node-ports", type=int, nargs="+", help="the nodes' ports (default: free ports; PORT+1, PORT+2... for --print-nginx-config)")
    parser.add_argument("--workers-per-node", type=int, default=1, help="server processes per node (one per core)")
    parser.add_argument("--public-url", help="the address clients reach nginx at (default: http://HOST:PORT)")
    parser.add_argument("--run-dir", default=".dinum/catalog-nodes",
                        help="nginx's configuration, the nodes' and nginx's logs (default: .dinum/catalog-nodes)")
    parser.add_argument("--print-nginx-config", action="store_true",
                        help="print the nginx configuration these options give, and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.files_dir or not (args.database_url or args.print_nginx_config):
        print(f"error: --database-url and --files-dir are needed (or ${DATABASE_URL_ENV} and ${FILES_DIR_ENV})", file=sys.stderr)
        return 2
    if args.print_nginx_config:
        ports = args.node_ports or [args.port + 1 + index for index in range(args.nodes)]
        print(render_nginx_config(
            listen=f"{args.host}:{args.port}", node_addresses=[f"{args.host}:{node_port}" for node_port in ports],
            files_dir=Path(args.files_dir), run_dir=Path(args.run_dir).resolve(),
        ))
        return 0
    with run_catalog_nodes(
        args.database_url, args.files_dir, nodes=args.nodes, host=args.host, port=args.port, node_ports=args.node_ports,
        workers_per_node=args.workers_per_node, public_url=args.public_url, run_dir=args.run_dir,
    ) as running:
        print(f"catalog at {running.url} (nginx), nodes: {', '.join(node.url for node in running.nodes)}", file=sys.stderr)
        print(f"logs and nginx configuration in {running.run_dir}; Ctrl-C stops everything", file=sys.stderr)
        _wait_for_stop_signal()
        print("stopping nginx, then each node (queued usage events are written)...", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
