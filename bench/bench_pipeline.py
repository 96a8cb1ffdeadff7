"""The whole dataset run as Dagster runs it (raw -> clean -> check -> published), on the DVF-like
file, against pyarrow's CSV read and DuckDB's CSV-to-Parquet of the same file, in the same run.

Issue 13, part 1: memory must not grow with the file. For each size, three fresh processes read
the same file, already in the page cache:

- `pyarrow.csv.read_csv` of the file (the reference for time: the run must stay within
  RUN_TIME_TARGET of it at 10M rows and more);
- DuckDB's `COPY (SELECT * FROM read_csv(...)) TO '...parquet'` (what a plain conversion costs);
- the dataset's Dagster job, executed in its own process on a Dagster instance of its own: the
  file downloaded over HTTP from a loopback server (Python's http.server: it streams files), judged,
  cleaned, checked with the dataset's rules (a uniqueness rule among them, answered on disk), and
  published to a `dinum-catalog serve` process (SQLite) with its chunked uploads.

Printed per size: seconds, peak RSS of each process (VmHWM), the catalog's peak RSS, ratios to
pyarrow, and whether the cleaning report equals the
generator's record (its injected defects, column by column) and the catalog holds both files with
the published checksums. Target: the run's peak at most RUN_PEAK_TARGET_MIB at every size.

    python bench/bench_pipeline.py                       # 1M, 10M and 30M rows
    python bench/bench_pipeline.py --rows 60000000       # about 8 GB
    python bench/bench_pipeline.py --rows 20000 --no-references   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_catalog import OUT_DIR, catalog_process, status_kib, stop_process
from bench_parse_clean import ensure_file, finish_worker, report_mismatches, run_pyarrow

from dinum_pipelines.catalog.nodes import free_port, wait_until_answers

RUN_PEAK_TARGET_MIB = 1536
RUN_TIME_TARGET = 3.0
SLUG = "dvf_bench"
ORGANIZATION = {"slug": "dgfip-bench", "name": "DGFiP (banc d'essai)"}


def registry_entry(url: str, record: dict[str, Any]) -> dict[str, Any]:
    """The dataset as a data engineer would declare DVF: typed columns, the rules a reuser relies
    on, a uniqueness rule (a warning: a mutation spans several rows), the coverage from the data.
    A cell that does not parse is a warning here, so the run goes on to publication."""
    rules: dict[str, dict[str, Any]] = {
        "id_mutation": {"required": True, "unique": True, "severities": {"unique": "warning"}},
        "date_mutation": {"minimum": "2014-01-01"},
        "valeur_fonciere": {"minimum": 0},
        "code_postal": {"pattern": r"^[0-9]{5}$", "severity": "warning"},
        "longitude": {"minimum": -180, "maximum": 180},
        "latitude": {"minimum": -90, "maximum": 90},
    }
    columns = []
    for name, kind in record["columns"].items():
        column = {"name": name, "type": kind, **rules.get(name, {})}
        column.setdefault("severities", {})["type"] = "warning"
        columns.append(column)
    return {
        "slug": SLUG,
        "title": "Demandes de valeurs foncières (banc d'essai)",
        "description": "Fichier généré sur le modèle de DVF pour mesurer une exécution complète de bout en bout. " * 2,
        "organization": ORGANIZATION,
        "source": {"url": url, "format": "csv", "csv": {"encoding": record["encoding"], "delimiter": record["delimiter"]}},
        "license": "lov2",
        "frequency": "semiannual",
        "columns": columns,
        "temporal_coverage": {"column": "date_mutation"},
    }


@contextmanager
def file_server(directory: Path) -> Iterator[str]:
    """Python's http.server on a free loopback port, serving `directory` (it streams each file)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(url + "/")
        yield url
    finally:
        stop_process(process)


def _peak_mib() -> float:
    """This process's peak RSS so far: VmHWM, of this program only (ru_maxrss would also count
    the parent's memory at the fork before this program was executed)."""
    return status_kib(os.getpid(), "VmHWM") / 1024


def warm(path: Path) -> None:
    """Read the file once, as right after a download leaves it in the page cache (unless it is
    larger than a third of the machine's memory), a block at a time."""
    if path.stat().st_size > os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 3:
        return
    with path.open("rb") as handle:
        while handle.read(1 << 24):
            pass


def utf8_copy(path: Path, encoding: str) -> Path:
    """The file in UTF-8 beside it (made once): DuckDB reads no Windows-1252 without its encodings
    extension, which is not installed offline (the issue's DuckDB figures were on UTF-8 too)."""
    copy = path.with_name(path.stem + ".utf8.csv")
    if copy.exists() and copy.stat().st_mtime >= path.stat().st_mtime:
        return copy
    partial = copy.with_suffix(".part")
    with path.open("r", encoding=encoding, newline="") as source, partial.open("w", encoding="utf-8", newline="") as target:
        while block := source.read(1 << 22):
            target.write(block)
    partial.replace(copy)
    return copy


def worker_duckdb(path: Path, record: dict[str, Any], out: Path) -> dict[str, Any]:
    import duckdb

    # Every column as text, as our reader reads them: DuckDB's type guess stops at the first
    # defect the generator injected (`NC` in an integer column) instead of reporting it.
    literal = str(path).replace("'", "''")
    target = str(out).replace("'", "''")
    start = time.perf_counter()
    connection = duckdb.connect()
    connection.execute(
        f"COPY (SELECT * FROM read_csv('{literal}', delim = '{record['delimiter']}', header = true, all_varchar = true)) "
        f"TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
    )
    rows = connection.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchall()[0][0]
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mib": _peak_mib(), "rows": rows}


def worker_run(home: Path) -> dict[str, Any]:
    """The dataset's job, executed by Dagster in this process (settings in the environment)."""
    import logging

    import dagster as dg

    from dinum_pipelines.definitions import build_definitions
    from dinum_pipelines.defs.keys import job_name

    logging.getLogger("dagster").setLevel(logging.ERROR)
    defs = build_definitions()
    job = defs.resolve_job_def(job_name(SLUG))
    start = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
        )
        seconds = time.perf_counter() - start
        steps: dict[str, float] = {}
        started: dict[str, float] = {}
        for entry in instance.all_logs(result.run_id):
            event = entry.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.event_type_value == "STEP_START":
                started[event.step_key] = entry.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in started:
                steps[event.step_key.split("__")[-1]] = entry.timestamp - started[event.step_key]
    failures = [f"{e.step_key}: {e.event_specific_data.error.message.strip()[:300]}" for e in result.get_step_failure_events()]
    return {"seconds": seconds, "peak_mib": _peak_mib(), "success": result.success and not failures, "failures": failures, "steps": steps}


def run_worker(kind: str, *arguments: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One side in a fresh interpreter; what it measured (its last output line)."""
    command = [sys.executable, __file__, "--worker", kind, *arguments]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def published_matches(catalog_url: str, data_dir: Path) -> list[str]:
    """Differences between the clean files on disk and what the catalog holds (empty: equal)."""
    clean = data_dir / "clean" / SLUG
    publication = clean / "published.json"
    if not publication.exists():
        return ["the run recorded no publication"]
    dataset_id = json.loads(publication.read_text(encoding="utf-8"))["dataset_id"]
    dataset = requests.get(f"{catalog_url}/api/1/datasets/{dataset_id}/", timeout=30).json()
    published = {resource["title"]: resource for resource in dataset["resources"]}
    problems = []
    for name in (f"{SLUG}.csv", f"{SLUG}.parquet"):
        size = (clean / name).stat().st_size
        if name not in published:
            problems.append(f"{name} not published")
        elif published[name].get("filesize") != size:
            problems.append(f"{name}: {published[name].get('filesize')} bytes in the catalog, {size} on disk")
    return problems


def measure(rows: int, out_dir: Path, references: bool) -> tuple[list[str], bool]:
    from dinum_pipelines.catalog import (
        CatalogSettings,
        CatalogStore,
        bootstrap_publisher,
    )

    path, sidecar = ensure_file(rows, out_dir)
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    warm(path)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-", dir=out_dir) as home_name:
        home = Path(home_name)
        if references:
            results["pyarrow"] = run_worker("pyarrow", "--file", str(path), "--record", str(sidecar))
            utf8 = utf8_copy(path, record["encoding"])
            warm(utf8)
            results["duckdb"] = run_worker("duckdb", "--file", str(utf8), "--record", str(sidecar), "--parquet", str(home / "duckdb.parquet"))
            (home / "duckdb.parquet").unlink(missing_ok=True)
        settings = CatalogSettings.in_directory(home / "catalog")
        with CatalogStore(settings) as store:
            publisher = bootstrap_publisher(store, org_slug=ORGANIZATION["slug"], org_name=ORGANIZATION["name"],
                                            email="bench@example.org", name="Bench Bot")
        registry = home / "sources"
        registry.mkdir()
        (home / "dagster_home").mkdir()
        with file_server(path.parent) as source_url, catalog_process(settings.database_url, settings.files_dir) as catalog:
            entry = registry_entry(f"{source_url}/{path.name}", record)
            (registry / f"{SLUG}.yaml").write_text(json.dumps(entry, ensure_ascii=False), encoding="utf-8")
            env = {
                **os.environ,
                "DINUM_SOURCES_DIR": str(registry),
                "DINUM_DATA_DIR": str(home / "data"),
                "DINUM_CATALOG_URL": catalog.url,
                "DINUM_CATALOG_API_KEY": publisher.token,
                "DAGSTER_HOME": str(home / "dagster_home"),
            }
            results["run"] = run_worker("run", "--home", str(home), env=env)
            catalog_peak = catalog.peak_mib()
            problems = list(results["run"]["failures"])
            cleaning = home / "data" / "clean" / SLUG / "cleaning.json"
            if cleaning.exists():
                from dinum_pipelines.lib.clean.cleaning import CleaningReport

                problems += report_mismatches(CleaningReport.from_dict(json.loads(cleaning.read_text(encoding="utf-8"))), record)
                problems += published_matches(catalog.url, home / "data")
            else:
                problems.append("the run wrote no cleaning report")
    run = results["run"]
    lines = [f"DVF-like CSV: {rows:,} rows, {record['bytes'] / 1e9:.2f} GB ({record['encoding']}, '{record['delimiter']}')", ""]
    lines.append("| process | s | peak RSS MiB | × pyarrow time | × pyarrow peak |")
    lines.append("|---|---|---|---|---|")
    reference = results.get("pyarrow")
    for kind, label in (("pyarrow", "pyarrow.csv.read_csv"), ("duckdb", "DuckDB CSV -> Parquet (UTF-8 copy)"), ("run", "the dataset's Dagster run")):
        if kind not in results:
            continue
        measured = results[kind]
        ratios = (
            f"{measured['seconds'] / reference['seconds']:.2f} | {measured['peak_mib'] / reference['peak_mib']:.2f}" if reference else "- | -"
        )
        lines.append(f"| {label} | {measured['seconds']:.1f} | {measured['peak_mib']:,.0f} | {ratios} |")
    lines.append(f"| the catalog (`dinum-catalog serve`) | | {catalog_peak:,.0f} | | |")
    lines.append("")
    lines.append("run steps (s): " + ", ".join(f"{step} {seconds:.1f}" for step, seconds in run["steps"].items()))
    peak_met = run["peak_mib"] <= RUN_PEAK_TARGET_MIB
    lines.append(f"target: run peak ≤ {RUN_PEAK_TARGET_MIB} MiB -> {run['peak_mib']:,.0f} MiB {'met' if peak_met else 'MISSED'}")
    if reference:
        ratio = run["seconds"] / reference["seconds"]
        applies = rows >= 10_000_000
        lines.append(
            f"target: run ≤ {RUN_TIME_TARGET:g}× pyarrow's read -> {ratio:.2f}× "
            + (("met" if ratio <= RUN_TIME_TARGET else "MISSED") if applies else "(set at 10M rows and more)")
        )
    ok = peak_met and not problems and run["success"]
    lines.append("results: " + ("cleaning report equals the generator's record; both files published with their sizes" if not problems
                                else "FAILED: " + "; ".join(problems)))
    return lines, ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000, 30_000_000])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for the generated files and the runs' state")
    parser.add_argument("--no-references", action="store_true", help="only the run (no pyarrow or DuckDB)")
    parser.add_argument("--worker", choices=["pyarrow", "duckdb", "run"], help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--parquet", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        record = json.loads(args.record.read_text(encoding="utf-8")) if args.record else {}
        result = {
            "pyarrow": lambda: run_pyarrow(args.file, record),
            "duckdb": lambda: worker_duckdb(args.file, record, args.parquet),
            "run": lambda: worker_run(args.home),
        }[args.worker]()
        finish_worker(result)
    args.out.mkdir(parents=True, exist_ok=True)
    ok = True
    for rows in args.rows:
        lines, met = measure(rows, args.out, not args.no_references)
        ok = ok and met
        print("\n".join(lines), end="\n\n", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
