"""Behaviour feature aggregation: throughput and peak memory over 1M and 10M events, and
the latency of featurising one lead with a few hundred events (the API's path).

Usage: ``python -m benchmarks.bench_features [--events 1000000 10000000]``. Each size is
simulated once to Parquet in a temporary folder; a fresh process then reads it, builds the
default config's snapshots and aggregates, so the peak memory reported is that run's own.
Targets (issue 2): 10M events in under 60 s with peak memory under 6 GB.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._results import machine_info, peak_rss_gib, run_child, update_section
from predictive_scoring.config import DatasetConfig, load_config
from predictive_scoring.data.synthetic import simulate_funnel, write_funnel
from predictive_scoring.features import (
    SnapshotEvents,
    behaviour_features,
    featurise,
    fit_feature_spec,
    to_ns,
)

CONFIG = Path("configs/datasets/simulated.yaml")


def simulate_events(n_events: int, out: Path) -> None:
    """Simulate leads until there are ``n_events`` events; write leads and events."""
    snapshots = load_config(CONFIG, DatasetConfig).snapshots
    probe = simulate_funnel(2_000, 1, snapshots.days_after_creation, snapshots.horizon_days)
    n_leads = int(n_events / (len(probe.events) / 2_000) * 1.02) + 1
    funnel = simulate_funnel(n_leads, 1, snapshots.days_after_creation, snapshots.horizon_days)
    keep = funnel.events.iloc[:n_events]
    leads = funnel.leads.loc[funnel.leads["lead_id"].isin(keep["lead_id"].unique())]
    write_funnel(type(funnel)(leads, keep, funnel.stage_changes.iloc[:0], funnel.truth.iloc[:0]),
                 out, "parquet")


def aggregate(folder: Path) -> dict[str, float]:
    """Read the Parquet files, build snapshots, aggregate; report time and peak memory."""
    config = load_config(CONFIG, DatasetConfig)
    leads = pd.read_parquet(folder / "leads.parquet", columns=["lead_id", "created_at"])
    events = pd.read_parquet(folder / "events.parquet")
    days = config.snapshots.days_after_creation
    snapshots = leads.loc[leads.index.repeat(len(days))].reset_index(drop=True)
    snapshots["as_of"] = snapshots["created_at"] + pd.to_timedelta(np.tile(days, len(leads)),
                                                                   unit="D")
    start = time.perf_counter()
    spec = fit_feature_spec(events["event_type"].to_numpy(object),
                            events["detail"].to_numpy(object), config.features)
    features = behaviour_features(spec, snapshots, events)
    seconds = time.perf_counter() - start
    return {"events": len(events), "snapshots": len(features), "features": features.shape[1],
            "seconds": seconds, "events_per_s": len(events) / seconds,
            "peak_gib": peak_rss_gib()}


def single_lead_latency(n_events: int = 300, repeats: int = 2_000) -> dict[str, float]:
    """p50 / p99 milliseconds to featurise one lead with ``n_events`` events from arrays."""
    config = load_config(CONFIG, DatasetConfig)
    rng = np.random.default_rng(0)
    types = rng.choice(["page_view", "email_open", "email_send", "demo_request"], n_events)
    details = rng.choice(np.array(["pricing", "blog", None], dtype=object), n_events)
    spec = fit_feature_spec(types, details, config.features)
    as_of = to_ns(pd.Series([pd.Timestamp("2025-06-01", tz="UTC")]))
    times = np.sort(as_of[0] - rng.integers(1, 90 * 86_400, n_events) * 10**9)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        data = SnapshotEvents(np.zeros(1, np.int64), as_of, np.zeros(n_events, np.int64), times,
                              types.astype(object), details)
        featurise(spec, data, np.array([90.0]))
        timings.append((time.perf_counter() - start) * 1e3)
    return {"p50_ms": float(np.percentile(timings, 50)),
            "p99_ms": float(np.percentile(timings, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(aggregate(args.child)))
        return
    rows = []
    for n_events in args.events:
        with tempfile.TemporaryDirectory() as folder:
            simulate_events(n_events, Path(folder))
            rows.append(json.loads(run_child("benchmarks.bench_features", "--child", folder)))
        print(rows[-1], flush=True)
    write_results(rows, single_lead_latency())


def write_results(rows: list[dict[str, float]], latency: dict[str, float]) -> None:
    lines = ["## Behaviour features (`python -m benchmarks.bench_features`)", "",
             machine_info(), "",
             "| events | snapshots | features | seconds | events/s | peak memory (GiB) |",
             "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['events']:,} | {r['snapshots']:,} | {r['features']} | {r['seconds']:.1f} "
              f"| {r['events_per_s']:,.0f} | {r['peak_gib']:.2f} |" for r in rows]
    lines += ["", "Seconds: fitting the key vocabulary and aggregating (reading the Parquet "
              "files is not timed; peak memory includes it). Target: 10M events in under "
              "60 s with peak memory under 6 GB.", "",
              f"One lead with 300 events, from arrays (the API's path): p50 "
              f"{latency['p50_ms']:.3f} ms, p99 {latency['p99_ms']:.3f} ms."]
    update_section("bench_features", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
