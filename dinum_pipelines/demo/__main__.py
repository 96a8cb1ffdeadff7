"""`make demo`: the whole path on one machine, from demo administrations to a local catalog.

    python -m dinum_pipelines.demo [--home .dinum] [--catalog-port 8090] [--admin-port 8765] [--no-serve]

Starts the demo administrations and the catalog (SQLite and a local folder under --home),
creates the producers' organizations and a publisher key, runs every dataset's job on a
persistent Dagster instance (--home/dagster_home), prints a summary, then `catalog: <url>`,
and keeps serving until Ctrl-C. The settings it used are written to `.env` so that
`dagster dev` (`make ui`) works on the same instance and catalog.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import sys
import threading
from pathlib import Path

import dagster as dg

from dinum_pipelines.catalog.server import serve_in_thread
from dinum_pipelines.catalog.settings import CatalogSettings
from dinum_pipelines.defs.resources import CATALOG_API_KEY_VAR
from dinum_pipelines.defs.monitoring.quality_report import monitoring_organization
from dinum_pipelines.lib.storage.layout import DataLayout
from dinum_pipelines.defs.metrics.assets import METRICS_API_KEY_VAR
from dinum_pipelines.demo.runner import (
    bootstrap_demo_publisher,
    bootstrap_metrics_sysadmin,
    format_summary,
    run_datasets,
    run_quality_report,
    run_usage_metrics,
)
from dinum_pipelines.demo.server import ADMIN_URL_ENV, DEFAULT_PORT, serve_administrations
from dinum_pipelines.lib.declare.registry import load_registry

DEMO_PUBLISHER_EMAIL = "publication@demo.dinum.local"
DEMO_METRICS_EMAIL = "statistiques@demo.dinum.local"
INSTANCE_SETTINGS = Path(__file__).with_name("dagster.yaml")
DEMO_SCHEMAS_DIR = Path(__file__).with_name("schemas")


def _free_or_any(port: int) -> int:
    """`port` if nothing listens on it, else 0 (any free port), so a busy port never stops the demo."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def write_env_file(path: Path, values: dict[str, str]) -> None:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()), encoding="utf-8")
    path.chmod(0o600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dinum_pipelines.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path(".dinum"), help="where the demo keeps its state")
    parser.add_argument("--catalog-port", type=int, default=8090)
    parser.add_argument("--admin-port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--no-serve", action="store_true", help="exit after the summary instead of serving")
    args = parser.parse_args(argv)

    home = args.home.resolve()
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    if not (dagster_home / "dagster.yaml").exists():
        shutil.copyfile(INSTANCE_SETTINGS, dagster_home / "dagster.yaml")
    # Dagster's own warnings (e.g. a skipped check step) are in the UI; the console gets the summary.
    logging.getLogger("dagster").setLevel(logging.ERROR)
    registry = load_registry()

    administrations = serve_administrations(port=_free_or_any(args.admin_port))
    # The simulated clock lets the demo's usage simulation date its requests (sysadmin only).
    settings = CatalogSettings.in_directory(home / "catalog", simulated_clock=True)
    # The demo's Table Schemas are offered by the catalog's /valider/ page.
    settings.schemas_dir.mkdir(parents=True, exist_ok=True)
    for schema in DEMO_SCHEMAS_DIR.glob("*.json"):
        shutil.copyfile(schema, settings.schemas_dir / schema.name)
    catalog = serve_in_thread(settings, port=_free_or_any(args.catalog_port))
    organizations = {spec.organization.slug: spec.organization.name for spec in registry.values()}
    monitoring = monitoring_organization()
    organizations[monitoring.slug] = monitoring.name
    api_key = bootstrap_demo_publisher(catalog.store, DEMO_PUBLISHER_EMAIL, organizations)
    metrics_key = bootstrap_metrics_sysadmin(catalog.store, DEMO_METRICS_EMAIL, monitoring)

    env = {
        ADMIN_URL_ENV: administrations.url,
        "DINUM_CATALOG_URL": catalog.url,
        CATALOG_API_KEY_VAR: api_key,
        METRICS_API_KEY_VAR: metrics_key,
        "DINUM_DATA_DIR": str(home / "data"),
        "DAGSTER_HOME": str(dagster_home),
    }
    os.environ.update(env)
    write_env_file(Path(".env"), env)

    print(f"demo administrations: {administrations.url}")
    print(f"Dagster instance:     {dagster_home}")
    print("running every dataset's job...", flush=True)
    from dinum_pipelines.definitions import build_definitions

    defs = build_definitions()
    with dg.DagsterInstance.get() as instance:
        outcomes = run_datasets(defs, registry, instance)
        quality_report_id = run_quality_report(defs, instance)
        print("simulating a week of reusers and counting it...", flush=True)
        usage = run_usage_metrics(defs, instance, catalog.url, metrics_key)
    print(format_summary(outcomes, catalog.url))
    for spec in registry.values():
        if spec.table_schema is not None and spec.table_schema.path:
            schema_file = Path(spec.table_schema.path).name
            print(f"{spec.slug}: check its source as a producer would: {catalog.url}/valider/?url={spec.source.resolved_url}&schema={schema_file}")
            print(f"  or on the command line: .venv/bin/dinum-validate {spec.source.resolved_url} --schema {DEMO_SCHEMAS_DIR / schema_file}")
    if quality_report_id:
        print(f"quality report (one row per dataset and run): {catalog.url}/api/1/datasets/{quality_report_id}/")
        print(f"quality page: {catalog.url}/qualite/")
        print(f"Great Expectations Data Docs: {DataLayout(home / 'data').data_docs_site / 'index.html'}")
    print(
        f"usage metrics: {usage['generated']} simulated events ({usage['bots']} by bots, not counted), "
        f"{usage['first_day']} to {usage['last_day']}{'' if usage['success'] else ' (roll-up FAILED, see the Dagster UI)'}"
    )
    if usage["dataset_id"]:
        print(f"  usage dataset (daily and monthly CSV/Parquet): {catalog.url}/api/1/datasets/{usage['dataset_id']}/")
    print(f"  metric API: {catalog.url}/api/datasets/data/?metric_month__sort=desc ; each dataset's `metrics` in the API")
    print()
    print("Dagster UI on the same instance: in another terminal, run `make ui` and open http://127.0.0.1:3000")
    print(f"catalog: {catalog.url}", flush=True)
    if args.no_serve:
        catalog.stop()
        administrations.stop()
        return 0
    print("(serving the catalog and the demo administrations; Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        catalog.stop()
        administrations.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
