"""The quality suite on a million DVF-like rows: the Arrow engine against a pyarrow read, and against GX.

Issue 5 sets the target: validating the clean table must take at most 2× the time of
`pyarrow.csv.read_csv` of the same CSV, peak at most 2× its memory, and give results identical to
plain Great Expectations. Each round runs, each in a fresh interpreter (so VmHWM is that step's
own peak, imports included):

- **the reference**: `pyarrow.csv.read_csv` of the CSV;
- **our check**: what `pipeline.check_quality` does: read the clean Parquet, compile the suite
  (about 30 expectations: required, unique, enum, ranges including a date range, French
  formats, coordinates, personal-data scans of every text column) and run it with the Arrow engine.

Then, in this process: the failure count of every rule must equal what the generator injected
(`gen_dvf_like.generate_quality`'s sidecar), and on the first `--gx-rows` rows (plain GX on a
million rows takes minutes: our custom French-format and personal-data metrics are per-value
Python, as frformat and python-stdnum are) plain GX must return the same validation result,
expectation by expectation.

    python bench/bench_quality.py                 # 1,000,000 rows, 3 rounds, GX on 100,000
    python bench/bench_quality.py --rows 100000 --runs 1 --gx-rows 20000
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

TIME_TARGET = 2.0
PEAK_TARGET = 2.0

# How the bench's compiled rules are named against the generator's defect record: (column, declaration).
RULE_IDS = {
    "id_mutation_unique": ("id_mutation", "unique"),
    "date_mutation_range": ("date_mutation", "range"),
    "nature_mutation_enum": ("nature_mutation", "enum"),
    "valeur_fonciere_range": ("valeur_fonciere", "range"),
    "nombre_pieces_range": ("nombre_pieces_principales", "range"),
    "code_postal_format": ("code_postal", "format: code_postal"),
    "code_commune_format": ("code_commune", "format: insee_commune"),
    "code_departement_format": ("code_departement", "format: departement"),
    "siret_format": ("siret", "format: siret"),
    "email_format": ("email", "format: email"),
    "telephone_format": ("telephone", "format: telephone"),
    "coordinates_in_france": ("longitude+latitude", "format: coordonnees_france"),
    "email_personal_data": ("email", "personal data"),
}


def bench_spec():
    """The DatasetSpec of the generated file: its columns, types and rules."""
    import gen_dvf_like

    from dinum_pipelines.lib.declare.registry import DatasetSpec

    rules: dict[str, dict[str, Any]] = {
        "id_mutation": {"required": True, "unique": True},
        "date_mutation": {"required": True, "minimum": "2019-01-01", "maximum": "2024-12-31"},
        "nature_mutation": {"required": True, "enum": [label for label, _ in gen_dvf_like.NATURES]},
        "valeur_fonciere": {"minimum": 0},
        "nombre_pieces_principales": {"minimum": 0, "maximum": 50},
        "code_postal": {"format": "code_postal"},
        "code_commune": {"required": True, "format": "insee_commune", "year": 2024},
        "code_departement": {"format": "departement"},
        "type_local": {"enum": [label for label, _ in gen_dvf_like.LOCAL_TYPES if label]},
        "longitude": {"format": "coordonnees_france", "latitude_column": "latitude"},
        "siret": {"format": "siret"},
        "email": {"format": "email"},
        "telephone": {"format": "telephone"},
    }
    columns = [
        {"name": name, "type": kind, **rules.get(name, {})}
        for name, kind in (*gen_dvf_like.COLUMNS, *gen_dvf_like.QUALITY_EXTRA_COLUMNS)
    ]
    return DatasetSpec.model_validate(
        {
            "slug": "dvf_quality_bench",
            "title": "DVF-like benchmark file",
            "description": "Generated DVF-like file for the quality benchmark: real codes, one defect per rule, and functional contacts only.",
            "organization": {"slug": "bench", "name": "Bench"},
            "source": {"url": "http://127.0.0.1:9/dvf.csv", "format": "csv", "csv": {"encoding": "utf-8", "delimiter": ";"}},
            "license": "lov2",
            "frequency": "irregular",
            "columns": columns,
        }
    )


def _peak_mib() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            fields[line.split(":")[0]] = int(line.split()[1]) / 1024
    if not fields:
        fields = {"VmHWM": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "VmRSS": 0.0}
    return fields


def child(step: str, csv_path: Path, parquet_path: Path) -> dict[str, Any]:
    """One measured step, in this (fresh) process."""
    if step == "read":
        import pyarrow.csv as pacsv

        imported = _peak_mib()["VmRSS"]
        started = time.perf_counter()
        table = pacsv.read_csv(csv_path, parse_options=pacsv.ParseOptions(delimiter=";"))
        seconds = time.perf_counter() - started
        rows = table.num_rows
    else:
        import pyarrow.parquet as pq

        from dinum_pipelines.lib.quality.engine_arrow import validate_with_arrow
        from dinum_pipelines.lib.quality.rules import compile_rules

        # Imports are not validation work (as for the reference): frformat's official lists are
        # Python modules of frozensets, imported here before the clock starts.
        import frformat.formats.code_commune_insee  # noqa: F401
        import frformat.formats.code_postal  # noqa: F401
        import stdnum.fr.nir  # noqa: F401
        import stdnum.iban  # noqa: F401

        spec = bench_spec()
        imported = _peak_mib()["VmRSS"]
        started = time.perf_counter()
        table = pq.read_table(parquet_path)
        result = validate_with_arrow(table, "bench", compile_rules(spec, table.schema))
        seconds = time.perf_counter() - started
        rows = table.num_rows
        (parquet_path.parent / "arrow_result.json").write_text(json.dumps(result, default=str), encoding="utf-8")
    peak = _peak_mib()["VmHWM"]
    return {"seconds": seconds, "rows": rows, "peak_mib": peak, "imports_mib": imported}


def _run_child(step: str, csv_path: Path, parquet_path: Path) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", step, "--csv", str(csv_path), "--parquet", str(parquet_path)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def prepare(rows: int, out: Path) -> tuple[Path, Path, dict[str, Any]]:
    """The generated CSV (reused while its sidecar matches) and its clean Parquet, as the pipeline makes it."""
    import gen_dvf_like

    from dinum_pipelines.lib.clean.cleaning import clean_table
    from dinum_pipelines.lib.clean.parsing import decimal_separator, read_source
    from dinum_pipelines.lib.clean.tables import to_arrow, write_parquet

    csv_path = out / f"dvf_quality_{rows}.csv"
    sidecar = gen_dvf_like.sidecar_path(csv_path)
    record = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else None
    if record is None or record.get("rows") != rows or record.get("bytes") != (csv_path.stat().st_size if csv_path.exists() else -1):
        record = gen_dvf_like.generate_quality(csv_path, rows)
    parquet_path = out / f"dvf_quality_{rows}.parquet"
    spec = bench_spec()
    text_table, _ = read_source(csv_path, spec.source)
    frame, cleaning = clean_table(text_table, spec, decimal_separator(spec.source))
    if cleaning.issues:
        raise RuntimeError(f"the generated file should parse entirely: {[i.describe() for i in cleaning.issues]}")
    write_parquet(to_arrow(frame, spec), parquet_path)
    return csv_path, parquet_path, record


def failure_counts(result: dict[str, Any]) -> dict[str, int]:
    """Per bench rule id, the failing rows the validation found."""
    from dinum_pipelines.lib.quality.report import outcome_from_result

    found: dict[str, int] = {}
    for item in result["results"]:
        outcome = outcome_from_result(item)
        for rule_id, (column, source) in RULE_IDS.items():
            if (outcome.column, outcome.source) == (column, source):
                found[rule_id] = outcome.unexpected_count
        if not outcome.success and (outcome.column, outcome.source) not in RULE_IDS.values():
            found[f"unexpected failure: {outcome.column} {outcome.source}"] = outcome.unexpected_count
    return found


def compare_with_gx(parquet_path: Path, gx_rows: int) -> tuple[int, int, list[str], float, float]:
    import pyarrow.parquet as pq

    from dinum_pipelines.lib.quality.engine_arrow import result_differences, validate_with_arrow
    from dinum_pipelines.lib.quality.engine_gx import validate_with_gx
    from dinum_pipelines.lib.quality.rules import compile_rules

    table = pq.read_table(parquet_path).slice(0, gx_rows)
    rules = compile_rules(bench_spec(), table.schema)
    started = time.perf_counter()
    fast = validate_with_arrow(table, "bench", rules)
    fast_seconds = time.perf_counter() - started
    frame = table.to_pandas()
    started = time.perf_counter()
    reference = validate_with_gx(frame, "bench", rules)
    gx_seconds = time.perf_counter() - started
    return table.num_rows, len(rules), result_differences(reference, fast), fast_seconds, gx_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gx-rows", type=int, default=100_000, help="rows of the GX comparison (plain GX is slow)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out")
    parser.add_argument("--child", choices=("read", "validate"))
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--parquet", type=Path)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.csv, args.parquet)))
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path, record = prepare(args.rows, args.out)
    print(f"{csv_path}: {args.rows:,} rows, {record['bytes'] / 1e6:.1f} MB; clean Parquet {parquet_path.stat().st_size / 1e6:.1f} MB")
    rounds = []
    for _ in range(args.runs):
        read = _run_child("read", csv_path, parquet_path)
        ours = _run_child("validate", csv_path, parquet_path)
        rounds.append((read, ours))
    time_ratios = [o["seconds"] / r["seconds"] for r, o in rounds]
    peak_ratios = [o["peak_mib"] / r["peak_mib"] for r, o in rounds]
    time_ratio, peak_ratio = statistics.median(time_ratios), statistics.median(peak_ratios)
    print(f"{'step':<52} {'s':>7} {'rows/s':>11} {'peak RSS MiB':>13} {'after imports':>14}")
    for label, index in (("pyarrow.csv.read_csv (reference)", 0), ("read clean Parquet + quality suite (Arrow engine)", 1)):
        seconds = statistics.median(r[index]["seconds"] for r in rounds)
        peak = statistics.median(r[index]["peak_mib"] for r in rounds)
        imports = statistics.median(r[index]["imports_mib"] for r in rounds)
        print(f"{label:<52} {seconds:>7.2f} {args.rows / seconds:>11,.0f} {peak:>13.0f} {imports:>14.0f}")
    met = time_ratio <= TIME_TARGET and peak_ratio <= PEAK_TARGET
    print(f"× pyarrow time {time_ratio:.2f} (target ≤ {TIME_TARGET}), × pyarrow peak {peak_ratio:.2f} (target ≤ {PEAK_TARGET}): "
          f"{'targets met' if met else 'targets NOT met'} ({args.runs} round(s), medians of per-round ratios; "
          f"time {min(time_ratios):.2f}–{max(time_ratios):.2f}, peak {min(peak_ratios):.2f}–{max(peak_ratios):.2f})")

    result = json.loads((parquet_path.parent / "arrow_result.json").read_text(encoding="utf-8"))
    found = failure_counts(result)
    expected = record["expected_failures"]
    ok = True
    print(f"suite: {len(result['results'])} expectations")
    if found == expected:
        print(f"failures per rule vs generator: equal for all {len(expected)} rules ({sum(expected.values()):,} failing rows)")
    else:
        ok = False
        print(f"failures per rule vs generator: checks FAILED\n  found    {found}\n  expected {expected}")
    rows, count, differences, fast_seconds, gx_seconds = compare_with_gx(parquet_path, min(args.gx_rows, args.rows))
    if differences:
        ok = False
        print(f"identical to plain GX on the first {rows:,} rows: checks FAILED")
        for line in differences[:20]:
            print(f"  {line}")
    else:
        print(f"identical to plain GX on the first {rows:,} rows: yes, all {count} expectations "
              f"(GX {gx_seconds:.1f} s, Arrow engine {fast_seconds:.2f} s: {gx_seconds / fast_seconds:.0f}× faster)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR))
    sys.exit(main())
