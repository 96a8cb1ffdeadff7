"""Counting one day of 10,000,000 access events: read the day's events, drop bots, count, write.

Issue 6's target on this 2-core machine: under 20 s and under 2 GiB at 10 million events. What is
timed is what the `usage/daily` asset does after the export: `pq.read_table` of the day's events
(dictionary-encoded columns, as `usage/events` writes them), `metrics.count_day` with the default
bot list, and `metrics.write_parquet` of the counts. Each run happens in a fresh interpreter, so
the peak RSS (VmHWM) is that run's own, imports included; a plain `pq.read_table` of the same
file, also in a fresh interpreter, is the reference measured in the same run.

The generated day is realistic in shape: 2,000 datasets of 300 organizations with 5,000 files,
40 % views (web and API) and 60 % downloads (web, API, stable link), 200 user agents of which a
tenth are crawlers. The generator knows how many events are bots' and how many are left per kind;
the run checks the counts against it and exits 1 on a mismatch.

    python bench/bench_metrics.py                  # 10,000,000 events, 3 rounds
    python bench/bench_metrics.py --events 1000000 --runs 1
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

BENCH_DIR = Path(__file__).resolve().parent
DAY = date(2026, 10, 31)
TIME_TARGET_S = 20.0
PEAK_TARGET_MIB = 2048.0
DATASETS, ORGANIZATIONS, RESOURCES, USER_AGENTS = 2_000, 300, 5_000, 200


def _peak_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dictionary(indices: np.ndarray, values: list[str], mask: np.ndarray | None = None) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32), mask=mask), pa.array(values, pa.string()))


def generate(path: Path, events: int, seed: int = 6) -> dict[str, Any]:
    """Write one day of `events` events to `path` (Parquet, EVENT_SCHEMA); returns what a correct
    count must find. Reused when the sidecar says it was made with the same arguments."""
    from dinum_pipelines.lib.metrics.usage import EVENT_SCHEMA, BotFilter, day_bounds, write_parquet

    sidecar = path.with_suffix(".json")
    if path.exists() and sidecar.exists():
        expected = json.loads(sidecar.read_text(encoding="utf-8"))
        if expected.get("events") == events and expected.get("seed") == seed:
            return expected
    rng = np.random.default_rng(seed)
    start, end = day_bounds(DAY)
    span_us = int((end - start).total_seconds() * 1_000_000)
    occurred = pa.array(int(start.timestamp() * 1_000_000) + rng.integers(0, span_us, events), pa.timestamp("us", tz="UTC"))
    is_view = rng.random(events) < 0.4
    resource_index = rng.integers(0, RESOURCES, events)
    dataset_of_resource = np.arange(RESOURCES) % DATASETS
    dataset_index = np.where(is_view, rng.integers(0, DATASETS, events), dataset_of_resource[resource_index])
    organization_of_dataset = np.arange(DATASETS) % ORGANIZATIONS
    channel_index = np.where(is_view, rng.integers(0, 2, events), rng.integers(0, 3, events))  # web, api[, permalink]
    agents = [f"Mozilla/5.0 (compatible; Crawler{n}bot/1.0)" if n % 10 == 0 else f"reuser-client/{n}.0" for n in range(USER_AGENTS)]
    agent_index = rng.integers(0, USER_AGENTS, events)
    columns = {
        "occurred_at": occurred,
        "kind": _dictionary(np.where(is_view, 0, 1), ["dataset.view", "resource.download"]),
        "channel": _dictionary(channel_index, ["web", "api", "permalink"]),
        "dataset_id": _dictionary(dataset_index, [f"{n:024x}" for n in range(DATASETS)]),
        "resource_id": _dictionary(resource_index, [f"00000000-0000-4000-8000-{n:012x}" for n in range(RESOURCES)], mask=is_view),
        "organization_id": _dictionary(organization_of_dataset[dataset_index], [f"{n + 1:024x}" for n in range(ORGANIZATIONS)]),
        "user_agent": _dictionary(agent_index, agents),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(pa.table(columns, schema=EVENT_SCHEMA), path)
    bots = np.array([BotFilter.from_file().is_bot(agent) for agent in agents])[agent_index]
    expected = {
        "events": events, "seed": seed, "bot_events": int(bots.sum()),
        "views": int((is_view & ~bots).sum()), "downloads": int((~is_view & ~bots).sum()),
    }
    sidecar.write_text(json.dumps(expected), encoding="utf-8")
    return expected


def run_ours(events_path: Path, out: Path) -> dict[str, Any]:
    """What usage/daily does: read, drop bots, count, write (in this interpreter)."""
    from dinum_pipelines.lib.metrics.usage import BotFilter, count_day, write_parquet

    started = time.perf_counter()
    table = pq.read_table(events_path)
    counted = count_day(table, DAY, BotFilter.from_file())
    write_parquet(counted.table, out)
    seconds = time.perf_counter() - started
    by_kind: dict[str, int] = {}
    for kind, count in zip(counted.table["kind"].to_pylist(), counted.table["count"].to_pylist(), strict=True):
        by_kind[kind] = by_kind.get(kind, 0) + count
    return {
        "seconds": seconds, "peak_mib": _peak_mib(), "events": counted.events, "bot_events": counted.bot_events,
        "views": by_kind.get("dataset.view", 0), "downloads": by_kind.get("resource.download", 0), "rows": counted.table.num_rows,
    }


def run_reference(events_path: Path) -> dict[str, Any]:
    started = time.perf_counter()
    table = pq.read_table(events_path)
    return {"seconds": time.perf_counter() - started, "peak_mib": _peak_mib(), "events": table.num_rows}


def _fresh(step: str, events_path: Path, out: Path) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--step", step, "--file", str(events_path), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{step} run failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out")
    parser.add_argument("--step", choices=["ours", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:  # a measured run, in its own interpreter
        result = run_ours(args.file, args.out) if args.step == "ours" else run_reference(args.file)
        from bench_parse_clean import finish_worker

        finish_worker(result)

    events_path = args.out / f"events_{args.events}.parquet"
    began = time.perf_counter()
    expected = generate(events_path, args.events)
    print(f"day of {args.events:,} events: {events_path} ({events_path.stat().st_size / 2**20:.0f} MiB, ready in {time.perf_counter() - began:.1f} s)")
    ours, reference = [], []
    for _ in range(args.runs):
        reference.append(_fresh("reference", events_path, args.out / "unused.parquet"))
        ours.append(_fresh("ours", events_path, args.out / f"daily_{args.events}.parquet"))
    seconds = statistics.median(run["seconds"] for run in ours)
    peak = max(run["peak_mib"] for run in ours)
    print(f"{'':34}{'s (median)':>12}{'events/s':>14}{'peak RSS MiB':>14}")
    for label, runs in (("pq.read_table (reference)", reference), ("read + bots + count + write", ours)):
        median = statistics.median(run["seconds"] for run in runs)
        print(f"{label:34}{median:12.2f}{args.events / median:14,.0f}{max(run['peak_mib'] for run in runs):14.0f}")
    met = seconds < TIME_TARGET_S and peak < PEAK_TARGET_MIB
    print(f"target at 10,000,000 events: < {TIME_TARGET_S:.0f} s and < {PEAK_TARGET_MIB / 1024:.0f} GiB -> {'met' if met else 'NOT met'} at {args.events:,}")
    wrong = [
        f"{name}: counted {run[name]} != generated {expected[name]}"
        for run in ours for name in ("events", "bot_events", "views", "downloads") if run[name] != expected[name]
    ]
    print("counts vs generator: " + ("equal in every run" if not wrong else "MISMATCH " + "; ".join(wrong)))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
