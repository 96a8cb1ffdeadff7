"""The conformance report of a DVF-like CSV against its Table Schema, next to pyarrow and frictionless.

Issue 11's must-show: `conformance.validate_file` on the 1,000,000-row DVF-like file (cp1252, `;`,
CRLF, with the generator's injected defects), in the same run as `pyarrow.csv.read_csv` of the same
file (the reference) and `frictionless validate` of it with the same schema (the peer: ~40× the
pyarrow read per ../shared/perf-baseline.md). Target: the conformance report in at most 2× the
time of the pyarrow read. The machine is shared and noisy, so only ratios measured in the same run
mean anything: every round runs each side in a fresh interpreter (so the peak RSS, VmHWM, is that
run's own, imports included), and the ratios are the medians of the per-round ratios, as in
`bench_parse_clean.py`. frictionless takes ~30-40 s on a million rows, so it runs in the first
round only unless `--frictionless-runs` says otherwise.

The run also checks correctness: the schema below is written so that the faults it must give are
exactly derivable from the generator's sidecar (every injected defect, plus the ISO dates, which
are valid for cleaning but not against a `%d/%m/%Y` date field). Our report must count exactly
those, field by field (exit 1 otherwise); frictionless' counts are checked the same way and any
difference is printed, without failing the run.

    python bench/bench_conformance.py                      # 1,000,000 rows, 3 rounds, frictionless once
    python bench/bench_conformance.py --rows 20000 --runs 1
    python bench/bench_conformance.py --no-frictionless
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))  # bench_parse_clean and gen_dvf_like, when imported from elsewhere
TIME_TARGET = 2.0
FRICTIONLESS_BASELINE = 40  # × the pyarrow read, ../shared/perf-baseline.md (1M rows, frictionless 5.21)
NO_FIELD = "(no field)"  # faults of the file or its header, counted under this name


def bench_schema() -> dict[str, Any]:
    """The Table Schema of the generated file; the faults it gives are derivable from the sidecar.

    Each choice, checked on a 20,000-row file against both our validator and frictionless 5.21:

    - `valeur_fonciere` is a string with a pattern: the generator writes French amounts grouped
      with ordinary *or* no-break spaces (and half not grouped), and a number field has a single
      `groupChar`, so no number field accepts every valid amount. The pattern accepts exactly the
      generated forms and rejects the four injected defects (`NC`, `#VALEUR!`, `12,5,0`, `1 2O4,00`).
    - `date_mutation` has `format: "%d/%m/%Y"`: the injected impossible dates (31/02, 00/01, 15/13)
      are type errors, and so are the generator's ISO dates (its "valid oddities" for cleaning,
      which accepts both forms; a Table Schema date field has one format).
    - `code_commune`'s alternatives are wrapped in a group: frictionless compiles a pattern as
      `^{pattern}$`, so a bare `a|b|c` would leave the first alternative unanchored at its end and
      the last at its start (`123456` would pass it); ours anchors the whole pattern. With the
      group both judge the same full match. `97[0-9]{3}` is redundant with `[0-9]{5}` (the
      overseas codes the generator writes, 971xx-976xx, are all digits) but says what is meant;
      `2[AB][0-9]{3}` covers Corsica (2A007...2B140).
    - `code_postal` is a string, not an integer: its leading zeros are part of the code.
    - `surface_reelle_bati`, `nombre_pieces_principales` are integers with `minimum: 0`: the
      injected `NC`, `120m2`, `3,5`, `deux` are type errors, and every generated value is ≥ 0.
    - `surface_terrain` is a number (integers are valid numbers); its whitespace-only cells are the
      generator's valid oddities, blanks: hence `missingValues: ["", " ", "   "]` at the top level
      (frictionless strips a number cell before casting, so without them `" "` would be a type
      error there; the generator's sidecar says these are blanks).
    - `longitude`/`latitude` are numbers with `decimalChar: ","` (no groups): `2,35,1` and `E2,35`
      are type errors (`bareNumber` stays true), every generated `-1,553621` is valid.
    - `nature_mutation` has the generator's 6 natures as its enum (no defect is injected there:
      its expectation is zero, which checks that the accented labels are decoded right).
    - `id_mutation` is required and patterned `[0-9]{4}-[0-9]+` (year, then the row number); no
      defect is injected there either, and no field but it and `date_mutation` is required,
      since the generator leaves blanks in the others.
    """
    from gen_dvf_like import COLUMNS, NATURES

    fields: dict[str, dict[str, Any]] = {
        "id_mutation": {"type": "string", "constraints": {"required": True, "pattern": "[0-9]{4}-[0-9]+"}},
        "date_mutation": {"type": "date", "format": "%d/%m/%Y", "constraints": {"required": True}},
        "nature_mutation": {"type": "string", "constraints": {"enum": [label for label, _ in NATURES]}},
        "valeur_fonciere": {"type": "string", "constraints": {"pattern": "-?[0-9]+([ \u00a0][0-9]{3})*,[0-9]{2}"}},
        "adresse_numero": {"type": "integer"},
        "code_postal": {"type": "string", "constraints": {"pattern": "[0-9]{5}"}},
        "code_commune": {"type": "string", "constraints": {"pattern": "([0-9]{5}|2[AB][0-9]{3}|97[0-9]{3})"}},
        "surface_reelle_bati": {"type": "integer", "constraints": {"minimum": 0}},
        "nombre_pieces_principales": {"type": "integer", "constraints": {"minimum": 0}},
        "surface_terrain": {"type": "number"},
        "longitude": {"type": "number", "decimalChar": ","},
        "latitude": {"type": "number", "decimalChar": ","},
    }
    return {
        "name": "dvf-bench",
        "title": "Demandes de valeurs foncières (banc d'essai)",
        "fields": [{"name": name, **fields.get(name, {"type": "string"})} for name, _ in COLUMNS],
        "missingValues": ["", " ", "   "],
    }


def expected_faults(record: dict[str, Any]) -> dict[str, int]:
    """Faults per field the schema must give: the injected defects, plus the ISO dates."""
    expected = Counter(record["expected_issues"])
    expected["date_mutation"] += record["valid_oddities"].get("date_mutation", 0)
    return {name: count for name, count in sorted(expected.items()) if count}


def schema_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".csv") + ".schema.json")


def write_schema(path: Path) -> Path:
    target = schema_path(path)
    text = json.dumps(bench_schema(), indent=1, ensure_ascii=False) + "\n"
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return target


# --- The workers, each run in a fresh interpreter -----------------------------------------------


def run_conformance(path: Path, schema_file: Path) -> dict[str, Any]:
    """Our path, as the worker process runs it: the schema parsed, then `validate_file`."""
    from bench_parse_clean import _memory

    from dinum_pipelines.lib.conformance import parse_schema, validate_file
    from dinum_pipelines.lib.declare.registry import SourceSpec

    schema = parse_schema(json.loads(schema_file.read_text(encoding="utf-8")), "dvf schema")
    source = SourceSpec(url="http://bench.invalid/dvf.csv", format="csv")
    imported = _memory()
    start = time.perf_counter()
    report = validate_file(path, schema, source, "dvf.csv")
    seconds = time.perf_counter() - start
    fields = Counter(fault.field or NO_FIELD for fault in report.faults)
    return {
        "seconds": seconds,
        "after_imports_mib": imported["rss_mib"],
        **_memory(),
        "rows": report.rows,
        "fields": dict(fields),
        "codes": report.counts_by_code(),
    }


def run_frictionless(path: Path, schema_file: Path) -> dict[str, Any]:
    """The peer, as the conformance tests call it (`real_pairs.frictionless_report`)."""
    from bench_parse_clean import _memory
    from frictionless import Detector, Resource, Schema

    document = json.loads(schema_file.read_text(encoding="utf-8"))
    imported = _memory()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resource = Resource(
            path=path.name, basepath=str(path.parent), schema=Schema.from_descriptor(document), detector=Detector(schema_sync=True)
        )
        report = resource.validate(limit_errors=10**9)
    seconds = time.perf_counter() - start
    flat = report.flatten(["type", "fieldName"])
    task = report.tasks[0]
    return {
        "seconds": seconds,
        "after_imports_mib": imported["rss_mib"],
        **_memory(),
        "rows": task.stats.get("rows"),
        "encoding": resource.encoding,
        "fields": dict(Counter(name or NO_FIELD for _, name in flat)),
        "codes": dict(sorted(Counter(code for code, _ in flat).items())),
    }


def run_reference(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    from bench_parse_clean import run_pyarrow

    return run_pyarrow(path, record)


WORKERS = ("pyarrow", "conformance", "frictionless")


def _worker(kind: str, path: Path, sidecar: Path, schema_file: Path) -> dict[str, Any]:
    """Run one side in a fresh interpreter and return what it measured."""
    command = [sys.executable, __file__, "--worker", kind, "--file", str(path), "--record", str(sidecar), "--schema", str(schema_file)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_rounds(path: Path, sidecar: Path, schema_file: Path, runs: int, frictionless_runs: int) -> dict[str, list[dict[str, Any]]]:
    """Each round: the reference, ours, and frictionless in the first `frictionless_runs` rounds."""
    results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in WORKERS}
    for index in range(runs):
        for kind in WORKERS:
            if kind == "frictionless" and index >= frictionless_runs:
                continue
            # Every run reads a file in the page cache, as right after a download.
            path.read_bytes()
            measured = _worker(kind, path, sidecar, schema_file)
            measured["round"] = index
            results[kind].append(measured)
    return results


# --- The summary -----------------------------------------------------------------------------------

LABELS = {
    "pyarrow": "pyarrow.csv.read_csv (reference)",
    "conformance": "conformance.validate_file",
    "frictionless": "frictionless validate (peer)",
}


def _ratios(reference: list[dict[str, Any]], runs: list[dict[str, Any]]) -> tuple[float, float]:
    """Median over the rounds `runs` ran in of each round's time and peak ratios to the reference."""
    pairs = [(reference[run["round"]], run) for run in runs]
    return (
        statistics.median(run["seconds"] / ref["seconds"] for ref, run in pairs),
        statistics.median(run["peak_mib"] / ref["peak_mib"] for ref, run in pairs),
    )


def count_differences(counted: dict[str, int], expected: dict[str, int]) -> list[str]:
    """Fields whose fault count differs from the expectation (empty: they agree)."""
    return [
        f"{name}: {counted.get(name, 0)} faults, expected {expected.get(name, 0)}"
        for name in sorted(set(counted) | set(expected))
        if counted.get(name, 0) != expected.get(name, 0)
    ]


def summarise(results: dict[str, list[dict[str, Any]]], record: dict[str, Any]) -> tuple[str, bool]:
    """The printed tables, and whether our report gave exactly the expected faults in every run."""
    rows = record["rows"]
    reference = results["pyarrow"]
    measured = {kind: runs for kind, runs in results.items() if runs}
    ratios = {kind: _ratios(reference, runs) for kind, runs in measured.items()}
    lines = [
        (
            f"DVF-like CSV: {rows:,} rows, {record['bytes'] / 1e6:.1f} MB, {record['encoding']} '{record['delimiter']}' CRLF; "
            "median of the rounds, one fresh interpreter per run"
        ),
        "",
        "| path | runs | s | rows/s | peak RSS MiB | Δ over imports MiB | × pyarrow time | × pyarrow peak |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, runs in measured.items():
        seconds = statistics.median(run["seconds"] for run in runs)
        peak = statistics.median(run["peak_mib"] for run in runs)
        delta = statistics.median(run["peak_mib"] - run["after_imports_mib"] for run in runs)
        time_ratio, peak_ratio = ratios[kind]
        lines.append(
            f"| {LABELS[kind]} | {len(runs)} | {seconds:.2f} | {rows / seconds:,.0f} | {peak:,.0f} | {delta:,.0f} "
            f"| {time_ratio:.2f} | {peak_ratio:.2f} |"
        )
    lines.append("")
    ours_time = ratios["conformance"][0]
    at_size = "" if rows == 1_000_000 else " (set at 1,000,000 rows)"
    lines.append(
        f"target (issue 11): conformance time ≤ {TIME_TARGET}× pyarrow -> {ours_time:.2f}× "
        f"{'met' if ours_time <= TIME_TARGET else 'MISSED'}{at_size}"
    )
    if "frictionless" in measured:
        peer_time = ratios["frictionless"][0]
        ours_same_rounds = statistics.median(
            run["seconds"] / mine["seconds"]
            for run in measured["frictionless"]
            for mine in results["conformance"]
            if mine["round"] == run["round"]
        )
        lines.append(
            f"peer: frictionless {peer_time:.1f}× pyarrow (perf-baseline: ~{FRICTIONLESS_BASELINE}× at 1M rows); "
            f"conformance is {ours_same_rounds:.1f}× faster in the same rounds"
        )
    lines.append("")

    # Correctness: faults per field, expected vs got.
    expected = expected_faults(record)
    ours = results["conformance"]
    peer = measured.get("frictionless", [])
    names = sorted(set(expected).union(*(run["fields"] for run in ours), *(run["fields"] for run in peer)))
    header = "| field | expected | conformance |" + (" frictionless |" if peer else "")
    lines += [header, "|---|---|---|" + ("---|" if peer else "")]
    for name in names:
        line = f"| {name} | {expected.get(name, 0):,} | {ours[0]['fields'].get(name, 0):,} |"
        if peer:
            line += f" {peer[0]['fields'].get(name, 0):,} |"
        lines.append(line)
    lines.append(
        f"| total | {sum(expected.values()):,} | {sum(ours[0]['fields'].values()):,} |"
        + (f" {sum(peer[0]['fields'].values()):,} |" if peer else "")
    )
    lines.append("")
    lines.append(f"conformance faults by code: {ours[0]['codes']}")
    if peer:
        lines.append(f"frictionless faults by code: {peer[0]['codes']} (encoding it detected: {peer[0]['encoding']})")

    problems = sorted({problem for run in ours for problem in count_differences(run["fields"], expected)})
    problems += sorted({f"rows {run['rows']:,} != {rows:,}" for run in ours if run["rows"] != rows})
    if problems:
        lines.append("checks FAILED: conformance report vs sidecar: " + "; ".join(problems))
    else:
        lines.append(f"conformance report vs sidecar: equal for every field in every run ({sum(expected.values()):,} faults)")
    if peer:
        differences = sorted({problem for run in peer for problem in count_differences(run["fields"], expected)})
        differences += sorted({f"rows {run['rows']:,} != {rows:,}" for run in peer if run["rows"] != rows})
        if differences:
            lines.append("frictionless vs sidecar: differs (not a failure): " + "; ".join(differences))
        else:
            lines.append("frictionless vs sidecar: equal for every field")
    return "\n".join(lines), not problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="rounds; each runs the reference and ours once")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="where the generated file is kept")
    parser.add_argument(
        "--frictionless-runs", type=int, default=1, metavar="N", help="run frictionless in the first N rounds (at most --runs)"
    )
    parser.add_argument("--no-frictionless", action="store_true", help="do not run frictionless at all")
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--schema", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        if args.worker == "pyarrow":
            measured = run_reference(args.file, json.loads(args.record.read_text(encoding="utf-8")))
        elif args.worker == "conformance":
            measured = run_conformance(args.file, args.schema)
        else:
            measured = run_frictionless(args.file, args.schema)
        from bench_parse_clean import finish_worker

        finish_worker(measured)
    from bench_parse_clean import ensure_file

    if args.runs < 1:
        parser.error("--runs must be at least 1")
    path, sidecar = ensure_file(args.rows, args.out)
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    schema_file = write_schema(path)
    frictionless_runs = 0 if args.no_frictionless else min(max(args.frictionless_runs, 0), args.runs)
    if frictionless_runs and importlib.util.find_spec("frictionless") is None:
        print("frictionless is not installed (it comes with the project's test extra): not run")
        frictionless_runs = 0
    table, report_ok = summarise(run_rounds(path, sidecar, schema_file, args.runs, frictionless_runs), record)
    print(f"schema: {schema_file}")
    print(table)
    return 0 if report_ok else 1


if __name__ == "__main__":
    sys.exit(main())
