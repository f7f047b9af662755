"""Funnel simulator: wall time and peak memory of ``simulate_funnel`` (truth included)
plus ``write_funnel`` to Parquet, for 100k and 1M leads.

Usage: ``python -m benchmarks.bench_simulate [--sizes 100000 1000000]`` from the project
root. Each size runs in a fresh process, so the peak resident memory it reports
(``ru_maxrss``) is that size's own; files go to a temporary folder deleted afterwards.
The figures are printed and written to the ``## Simulator`` section of
``benchmarks/RESULTS.md``. Target: 1M leads in under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks._results import machine_info, peak_rss_gib, run_child, update_section
from predictive_scoring.config import DatasetConfig, load_config
from predictive_scoring.data.synthetic import SimulatedFunnel, simulate_funnel, write_funnel
from predictive_scoring.stages import funnel_conversion, headline_rates

CONFIG = Path("configs/datasets/simulated.yaml")
SEED = 7


def measure(n_leads: int) -> dict[str, object]:
    """Simulate and write ``n_leads`` leads; timings, peak memory and the funnel's shape."""
    config = load_config(CONFIG, DatasetConfig)
    snapshots = config.snapshots
    start = time.perf_counter()
    funnel = simulate_funnel(n_leads, SEED, snapshots.days_after_creation,
                             snapshots.horizon_days)
    simulated = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_simulate_") as folder:
        written = write_funnel(funnel, Path(folder), "parquet")
        wrote = time.perf_counter()
        parquet_mb = sum(path.stat().st_size for path in written.values()) / 1e6
    return {"leads": n_leads, "events": len(funnel.events), "simulate_s": simulated - start,
            "write_s": wrote - simulated, "peak_gib": peak_rss_gib(),
            "parquet_mb": parquet_mb, **funnel_shape(funnel, config)}


def funnel_shape(funnel: SimulatedFunnel, config: DatasetConfig) -> dict[str, object]:
    """Headline stage rates and the positives of each snapshot day."""
    changes = funnel.stage_changes
    changes = changes.assign(stage=changes["stage"].map(
        {crm: stage.value for crm, stage in config.stage_names.items()}))
    rates = headline_rates(funnel_conversion(changes, len(funnel.leads)))
    by_day = funnel.truth.groupby("days_after_creation")["converted"].agg(["mean", "sum"])
    return {**rates, "positives": {str(day): [float(row["mean"]), int(row["sum"])]
                                   for day, row in by_day.iterrows()}}


def write_results(rows: list[dict]) -> None:
    """Print the figures and replace the simulator section of RESULTS.md."""
    snapshots = load_config(CONFIG, DatasetConfig).snapshots
    lines = ["## Simulator (`python -m benchmarks.bench_simulate`)", "", machine_info(), "",
             "| leads | events | events / lead | simulate (s) | write Parquet (s) | total (s) "
             "| peak memory (GiB) | Parquet (MB) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['leads']:,} | {r['events']:,} | {r['events'] / r['leads']:.1f} "
              f"| {r['simulate_s']:.1f} | {r['write_s']:.1f} "
              f"| {r['simulate_s'] + r['write_s']:.1f} | {r['peak_gib']:.2f} "
              f"| {r['parquet_mb']:,.0f} |" for r in rows]
    lines += ["", f"Seed {SEED}; snapshots {snapshots.days_after_creation} days after "
              f"creation, horizon {snapshots.horizon_days} days (configs/datasets/"
              "simulated.yaml). Simulate includes the exact truth; peak memory is the child "
              "process's `ru_maxrss`. Target: 1M leads in under 2 minutes on 2 cores.", "",
              "| leads | lead -> MQL | MQL -> SQL | SQL -> won | positive rate (positives) "
              "by snapshot day |", "|---:|---:|---:|---:|---|"]
    lines += [f"| {r['leads']:,} | {r['lead_to_mql']:.1%} | {r['mql_to_sql']:.1%} "
              f"| {r['sql_to_won']:.1%} | " + ", ".join(
                  f"day {day}: {rate:.2%} ({count:,})"
                  for day, (rate, count) in r["positives"].items()) + " |" for r in rows]
    update_section("bench_simulate", "\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="numbers of leads, one fresh process each")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    rows = []
    for n_leads in args.sizes:
        output = run_child("benchmarks.bench_simulate", "--child", str(n_leads))
        rows.append(json.loads(output.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    write_results(rows)


if __name__ == "__main__":
    main()
