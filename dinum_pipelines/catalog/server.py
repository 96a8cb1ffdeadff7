"""Running the catalog: in the foreground (CLI `serve`) or in a background thread (demo, tests).

`serve` can run several worker processes (uvicorn's supervisor): one process tops out near one
core (bench/README.md). Each worker builds its own app, store and usage-log writer from the
DINUM_CATALOG_* variables the supervisor passes down; they share nothing but the database.

The thread variant binds its socket before starting, so port 0 works (the OS picks a free port)
and `RunningCatalog.url` is known, and it returns only once the server answers HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import gc
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import uvicorn
import uvicorn.config
from starlette.applications import Starlette

from dinum_pipelines.catalog.app import create_app
from dinum_pipelines.catalog.settings import CatalogSettings
from dinum_pipelines.catalog.store import CatalogStore

_READY_PATH = "/api/1/datasets/licenses/"


@dataclass
class RunningCatalog:
    url: str  # base URL, e.g. http://127.0.0.1:54321 (the API is under url + "/api/1")
    settings: CatalogSettings
    store: CatalogStore  # the server's own store, for set-up and inspection in-process
    _server: uvicorn.Server
    _thread: threading.Thread

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/1"

    def stop(self, timeout: float = 10) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self.store.close()

    def __enter__(self) -> RunningCatalog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def serve(
    settings: CatalogSettings, *, host: str = "127.0.0.1", port: int = 8090, workers: int = 1, access_log: bool = True
) -> None:
    """Serve in the foreground until interrupted (Ctrl-C), in `workers` processes."""
    options: dict[str, Any] = {
        "host": host, "port": port, "log_level": "info", "log_config": log_config(), "proxy_headers": False, "access_log": access_log,
    }
    if workers == 1:
        app = create_app(settings, warm_up=True)
        freeze_startup_objects()
        uvicorn.run(app, **options)
        return
    # Workers are fresh interpreters: they import the app factory by name and read the settings
    # from the environment they inherit. They share their anonymous answers in a folder of their
    # own, on local memory where the system has it, gone when they stop.
    with contextlib.ExitStack() as stack:
        if settings.shared_answers_dir is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="dinum-catalog-answers-", dir=_memory_folder()))
            settings = dataclasses.replace(settings, shared_answers_dir=Path(folder))
        os.environ.update(settings.as_env())
        uvicorn.run(f"{__name__}:{app_from_environment.__name__}", factory=True, workers=workers, **options)


def log_config() -> dict[str, Any]:
    """uvicorn's logging, with the catalog's own records (the `dinum_pipelines` loggers: a
    worker's warm-up, the documents stored at start, webhook deliveries) at INFO beside its
    own, on its handler; they had none, and only warnings reached the terminal."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"]["dinum_pipelines"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _memory_folder() -> str | None:
    """/dev/shm where there is one (Linux's memory file system), else the system's temporary folder."""
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) and not os.environ.get("TMPDIR") else None


def app_from_environment() -> Starlette:
    """The app of one worker process of `serve(..., workers=N)`."""
    app = create_app(CatalogSettings.from_env(), warm_up=True)
    freeze_startup_objects()
    return app


def freeze_startup_objects() -> None:
    """Leave what the imports and the app's set-up made out of later garbage collections.

    A serving process keeps ~100,000 such objects (modules, functions, the route table) for its
    whole life, and each full collection walked them all: pauses that made the tail of the
    latency at 50 clients (bench/README.md). CPython's `gc.freeze` is meant for exactly this:
    long-lived objects allocated before serving starts.
    """
    gc.collect()
    gc.freeze()


class _PromptServer(uvicorn.Server):
    """uvicorn's server, looking for a stop request every 10 ms rather than every 100 ms: the demo
    and the tests start and stop many catalogs in one process, and each stop waited for the tick."""

    async def main_loop(self) -> None:
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 8_640_000
            await asyncio.sleep(0.01)
            # on_tick's once-in-ten work (the Date header) then runs every 100 ms, as before it did every second.
            should_exit = await self.on_tick(counter)


def serve_in_thread(
    settings: CatalogSettings, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 10
) -> RunningCatalog:
    """Start the catalog in a daemon thread; `port=0` picks a free port. Stop it with `.stop()`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    url = f"http://{host}:{sock.getsockname()[1]}"
    if settings.public_url is None:
        settings = dataclasses.replace(settings, public_url=url)
    store = CatalogStore(settings)
    config = uvicorn.Config(create_app(settings, store=store), log_level="warning", access_log=False, lifespan="on")
    server = _PromptServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"catalog-{url}", daemon=True)
    thread.start()
    running = RunningCatalog(url, settings, store, server, thread)
    try:
        _wait_until_ready(running, timeout)
    except BaseException:
        running.stop()
        sock.close()
        raise
    return running


def _wait_until_ready(running: RunningCatalog, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not running._thread.is_alive():
            raise RuntimeError(f"the catalog server at {running.url} stopped while starting")
        try:
            if requests.get(running.url + _READY_PATH, timeout=1).ok:
                return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or its first answer is slow
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the catalog at {running.url} did not answer within {timeout} s")
        time.sleep(0.02)
