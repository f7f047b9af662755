"""Loading and validating a dataset: ``load_dataset`` against its floor, a bare pyarrow read
of the same files plus their null and known-lead checks, in the same run, for Parquet and
for CSV; and 10M events loaded, validated and featurised end to end.

Usage: ``python -m benchmarks.bench_ingest [--leads 100000] [--events 10000000]
[--repeats 5] [--no-reference]``. Run it alone on the machine (``flock /tmp/bench.lock``).
``--leads`` simulated leads (about 32 events each) are written once as Parquet and once as
CSV; the floor and ``load_dataset`` then alternate ``--repeats`` times on each and the
ratio of every adjacent pair is taken (their median is the figure: other work on a shared
machine slows both of a pair alike). The pandas reader this replaced (kept under
``tests/reference``) is timed once on each for comparison. The end-to-end run is a fresh
process (its peak memory its own): ``load_dataset`` of a Parquet dataset holding
``--events`` events, the snapshots, the key vocabulary and the behaviour features.

Targets (issue 21, item 1): ``load_dataset`` within 3x its floor for Parquet and for CSV;
10M events loaded, validated and featurised in under 30 s with peak memory under 6 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from benchmarks._results import (
    SIMULATED_CONFIG,
    cpu_times,
    machine_info,
    peak_rss_gib,
    run_child,
    steal_share,
    update_section,
)
from predictive_scoring.config import DatasetConfig, load_config
from predictive_scoring.data.dataset import EventsDataset, load_dataset
from predictive_scoring.data.snapshots import build_snapshots, data_end_of
from predictive_scoring.data.synthetic import simulate_funnel, write_funnel
from predictive_scoring.features import behaviour_features, fit_feature_spec

RATIO_TARGET, SECONDS_TARGET, MEMORY_TARGET_GB = 3.0, 30.0, 6.0
TABLES = ("leads", "events", "stage_changes")
REQUIRED = {"leads": ("lead_id", "created_at"), "events": ("lead_id", "timestamp", "event_type"),
            "stage_changes": ("lead_id", "stage", "timestamp")}
"""Each table's contract columns, the ones the floor checks for nulls."""


# ------------------------------------------------------------------ inputs
def simulate(n_leads: int, seed: int, out: Path, file_format: str) -> DatasetConfig:
    """Simulate and write the three tables; the default config pointed at them."""
    config = load_config(SIMULATED_CONFIG, DatasetConfig)
    funnel = simulate_funnel(n_leads, seed, config.snapshots.days_after_creation,
                             config.snapshots.horizon_days)
    write_funnel(funnel, out, file_format)
    return pointed(config, out, file_format)


def pointed(config: DatasetConfig, folder: Path, file_format: str) -> DatasetConfig:
    """``config`` reading the three tables (not the truth) from ``folder``."""
    files = {name: f"{name}.{file_format}" for name in TABLES} | {"truth": None}
    return config.pointed_at(folder, files)


def n_leads_for(n_events: int) -> int:
    """Leads to simulate for about ``n_events`` events (from a small probe)."""
    snapshots = load_config(SIMULATED_CONFIG, DatasetConfig).snapshots
    probe = simulate_funnel(2_000, 1, snapshots.days_after_creation, snapshots.horizon_days)
    return int(n_events / (len(probe.events) / 2_000)) + 1


# ------------------------------------------------------------------ the two readers
def floor(config: DatasetConfig) -> int:
    """A bare pyarrow read of the three files, null checks of the contract columns and the
    known-lead checks of events and stage changes; returns the problems found (0)."""
    root = config.root_dir(Path("."))
    tables = {}
    for name in TABLES:
        path = root / getattr(config.files, name)
        tables[name] = (pq.read_table(path) if path.suffix == ".parquet"
                        else pa_csv.read_csv(path))
    problems = 0
    for name, columns in REQUIRED.items():
        for column in columns:
            problems += tables[name][column].null_count
    known = tables["leads"]["lead_id"]
    for name in ("events", "stage_changes"):
        problems += pc.sum(pc.invert(pc.is_in(tables[name]["lead_id"], value_set=known))).as_py()
    return problems


def ours(config: DatasetConfig) -> int:
    """``load_dataset``: read, validate, convert the kept rows; returns rows kept."""
    dataset = load_dataset(config, Path("."))
    return sum(len(check.kept) for check in dataset.checks.values())


def timed(function: Callable[[DatasetConfig], int], config: DatasetConfig) -> float:
    start = time.perf_counter()
    function(config)
    return time.perf_counter() - start


def compare(config: DatasetConfig, repeats: int, reference: bool) -> dict[str, Any]:
    """Floor and ``load_dataset`` alternately; each pair's ratio, their median."""
    ours(config)  # warm: imports, the page cache
    floor(config)
    load_before, ticks_before = os.getloadavg()[0], cpu_times()
    pairs = [(timed(floor, config), timed(ours, config)) for _ in range(repeats)]
    ratios = [mine / bare for bare, mine in pairs]
    result = {"floor_s": statistics.median(p[0] for p in pairs),
              "ours_s": statistics.median(p[1] for p in pairs),
              "ratio": statistics.median(ratios), "ratios": ratios,
              "load": (load_before + os.getloadavg()[0]) / 2,
              "steal": steal_share(ticks_before, cpu_times())}
    if reference:
        from tests.reference import pandas_reader

        start = time.perf_counter()
        pandas_reader.load_dataset(config, Path("."))
        result["reference_s"] = time.perf_counter() - start
    return result


# ------------------------------------------------------------------ end to end
def end_to_end(folder: Path) -> dict[str, Any]:
    """Load, validate and featurise a Parquet dataset; seconds per step and peak memory."""
    config = pointed(load_config(SIMULATED_CONFIG, DatasetConfig), folder, "parquet")
    steps: dict[str, float] = {}
    ticks, start = cpu_times(), time.perf_counter()
    dataset = load_dataset(config, Path("."))
    steps["load and validate"] = time.perf_counter() - start
    assert isinstance(dataset, EventsDataset)
    mark = time.perf_counter()
    snapshots = build_snapshots(dataset, config.snapshots, data_end_of(dataset)).frame
    steps["snapshots"] = time.perf_counter() - mark
    mark = time.perf_counter()
    events = dataset.events
    spec = fit_feature_spec(events["event_type"].to_numpy(object),
                            events["detail"].to_numpy(object), config.features)
    features = behaviour_features(spec, snapshots, events)
    steps["features"] = time.perf_counter() - mark
    return {"events": len(events), "leads": len(dataset.leads), "snapshots": len(features),
            "features": features.shape[1], "steps": steps,
            "seconds": time.perf_counter() - start, "peak_gib": peak_rss_gib(),
            "load": os.getloadavg()[0], "steal": steal_share(ticks, cpu_times())}


# ------------------------------------------------------------------ report
def write_results(ratios: dict[str, dict[str, Any]], e2e: dict[str, Any] | None,
                  n_leads: int, n_events: dict[str, int]) -> None:
    lines = ["## Loading and validation (`python -m benchmarks.bench_ingest`)", "",
             machine_info(), "",
             f"{n_leads:,} simulated leads ({n_events['parquet']:,} events, with their stage "
             "changes), written once as Parquet and once as CSV. **Floor**: a bare pyarrow read "
             "of the three files (`pq.read_table`, `pyarrow.csv.read_csv` with its type "
             "inference) plus a null check of every contract column and the known-lead check "
             "of events and stage changes (`pc.is_in`). **load_dataset**: read, every check "
             "with its problems named by file, row, column, value and reason, and the kept rows "
             "converted to pandas. The two alternate; the ratio is the median over adjacent "
             "pairs. Target: ratio <= 3.", "",
             "| format | floor (s) | load_dataset (s) | **ratio** | ratio per pair | "
             "pandas reader before (s) | machine load (1 min) | CPU steal | target |",
             "|---|---:|---:|---:|---|---:|---:|---:|---|"]
    for fmt, r in ratios.items():
        before = f"{r['reference_s']:.1f}" if "reference_s" in r else "-"
        lines.append(f"| {fmt} | {r['floor_s']:.2f} | {r['ours_s']:.2f} | **{r['ratio']:.2f}** | "
                     f"{', '.join(f'{x:.2f}' for x in r['ratios'])} | {before} | "
                     f"{r['load']:.2f} | {r['steal']:.1%} | "
                     f"{'PASS' if r['ratio'] <= RATIO_TARGET else 'FAIL'} |")
    if e2e is not None:
        steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in e2e["steps"].items())
        ok = e2e["seconds"] < SECONDS_TARGET and e2e["peak_gib"] * 2**30 < MEMORY_TARGET_GB * 1e9
        lines += ["", f"End to end, a fresh process: {e2e['events']:,} events of "
                  f"{e2e['leads']:,} leads (Parquet) loaded and validated, "
                  f"{e2e['snapshots']:,} snapshots built and their {e2e['features']} behaviour "
                  f"features computed in **{e2e['seconds']:.1f} s** ({steps}); peak memory "
                  f"**{e2e['peak_gib']:.2f} GiB** (`ru_maxrss`); machine load "
                  f"{e2e['load']:.2f}, CPU steal {e2e['steal']:.1%}. Target: under "
                  f"{SECONDS_TARGET:.0f} s and {MEMORY_TARGET_GB:.0f} GB: "
                  f"{'PASS' if ok else 'FAIL'}."]
    update_section("bench_ingest", "\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000_000,
                        help="events of the end-to-end run (0: skip it)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="skip timing the pandas reader this replaced")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(end_to_end(args.child)))
        return
    ratios, n_events = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for fmt in ("parquet", "csv"):
            config = simulate(args.leads, 7, Path(folder) / fmt, fmt)
            n_events[fmt] = pq.read_metadata(Path(folder) / "parquet" / "events.parquet").num_rows
            ratios[fmt] = compare(config, args.repeats, args.reference)
            print(fmt, ratios[fmt], flush=True)
    e2e = None
    if args.events:
        with tempfile.TemporaryDirectory() as folder:
            simulate(n_leads_for(args.events), 7, Path(folder), "parquet")
            e2e = json.loads(run_child("benchmarks.bench_ingest", "--child", folder))
            print(e2e, flush=True)
    write_results(ratios, e2e, args.leads, n_events)


if __name__ == "__main__":
    main()
