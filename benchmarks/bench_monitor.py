"""Monitoring: ``predictive-scoring monitor`` over 1,000,000 logged scores, and what the
online drift gauges add to scoring one lead.

Usage: ``python -m benchmarks.bench_monitor [--train-leads 20000] [--live-leads 50000]
[--rows 1000000] [--figure docs/monitoring_accuracy.png]``.

A LightGBM scorer is trained on simulated leads (seed 7) and registered in a temporary
MLflow store. Another simulated population (seed 11, the same law: the leads after
go-live) is scored with the batch path at a run of moments after each lead's creation
(1, 6, 11, ... days) until ``--rows`` scores are logged, none after the end of the data,
each with its input bins, into a SQLite prediction log written with the service's table.

Targets (issue 18):
- ``monitor`` over 1M logged scores in under 60 s with bounded memory (peak stated). Its
  floor: the bare read of the same rows and columns with the ``sqlite3`` module (no
  pandas), in a fresh process;
- the online drift gauges add under 5% to single-lead p99: ``POST /v1/score`` (one lead
  with its events, reasons on; in-process through the ASGI test client, no network) with
  and without the input bins and the drift window (the same loaded model with them
  switched off), interleaved request by request.

The monitor run's accuracy figure is saved from ``monitoring.html`` to ``--figure`` (the
README shows it).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from benchmarks._results import (
    BASE_CONFIG,
    SIMULATED_CONFIG,
    machine_info,
    peak_rss_gib,
    run_child,
    update_section,
)

MODEL_NAME = "lead-scoring-simulated"
MONITOR_TARGET_S, GAUGE_TARGET = 60.0, 0.05
TRAIN_SEED, LIVE_SEED = 7, 11
DAYS_STEP = 5
INSERT_ROWS = 50_000
GAUGE_LEADS, GAUGE_ROUNDS = 1000, 5
COLUMNS = ("scored_at", "request_id", "lead_id", "as_of", "probability", "score",
           "suggested_stage", "rule_points", "rule_stage", "model_name", "model_version",
           "input_bins")


# ------------------------------------------------------------------ inputs
def train_and_register(folder: Path, leads: int) -> dict[str, Any]:
    """Train on simulated leads and register the bundle as version 1 in ``folder``'s
    MLflow store (``MLFLOW_TRACKING_URI`` is set for this process and its children)."""
    from predictive_scoring.config import (
        BaseConfig,
        DatasetConfig,
        ModelConfig,
        RulesConfig,
        load_config,
    )
    from predictive_scoring.data.dataset import load_dataset
    from predictive_scoring.data.synthetic import simulate_into
    from predictive_scoring.tracking import bundle, registry, store
    from predictive_scoring.train import TrainingPlan, bundle_example
    from predictive_scoring.workflow.training import run_training

    base = load_config(BASE_CONFIG, BaseConfig)
    config = simulate_into(load_config(SIMULATED_CONFIG, DatasetConfig), leads, TRAIN_SEED,
                           folder / "train")
    dataset = load_dataset(config, Path("."))
    start = time.perf_counter()
    run = run_training(dataset, TrainingPlan(
        config, load_config(Path("configs/models/lightgbm.yaml"), ModelConfig),
        load_config(Path(config.rules), RulesConfig), base))
    train_s = time.perf_counter() - start
    store.use_tracking(base)
    with store.start_run("bench-monitor", "train",
                         artifact_location=(folder / "artifacts").as_uri()):
        bundle.log_bundle(run.trained.scorer, bundle_example(run, dataset.events, 3),
                          MODEL_NAME)
    registry.set_alias(MODEL_NAME, registry.CHAMPION, "1")
    return {"train_s": train_s, "leads": leads, "roc_auc": run.metrics["model"]["roc_auc"],
            "features": len(run.trained.scorer.columns.all),
            "rules_roc_auc": run.metrics["rules"]["roc_auc"]}


def write_log(folder: Path, live_leads: int, rows: int) -> dict[str, Any]:
    """Score the go-live population at moments after creation into a SQLite log."""
    from predictive_scoring.config import DatasetConfig, load_config
    from predictive_scoring.data.dataset import load_dataset
    from predictive_scoring.data.snapshots import data_end_of
    from predictive_scoring.data.synthetic import simulate_into
    from predictive_scoring.monitoring.reference import METADATA_KEY, InputBinner
    from predictive_scoring.tracking import registry
    from serving.prediction_log import create_log_engine, predictions

    config = simulate_into(load_config(SIMULATED_CONFIG, DatasetConfig), live_leads,
                           LIVE_SEED, folder / "live")
    (folder / "live.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    dataset = load_dataset(config, Path("."))
    end = data_end_of(dataset)
    scorer = registry.load_scorer(f"models:/{MODEL_NAME}/1")
    binner = InputBinner(scorer.metadata[METADATA_KEY], scorer.columns.all)
    leads = dataset.leads.drop(columns=["_row"], errors="ignore")
    url = f"sqlite:///{folder}/predictions.db"
    engine = create_log_engine(url)
    written, day, started = 0, 1, time.perf_counter()
    scoring_s = 0.0
    while written < rows:
        frame = leads.assign(as_of=leads["created_at"] + pd.Timedelta(days=day))
        frame = frame.loc[frame["as_of"] <= end].head(rows - written)
        if frame.empty:
            break
        start = time.perf_counter()
        encoded = scorer.encode(frame, dataset.events)
        features = scorer.features(frame, encoded)
        scored = scorer.score_features(frame, encoded, features)
        numbers = features.assign(**dict.fromkeys(scorer.columns.categorical, np.nan))
        bins = binner.encode(numbers.to_numpy(np.float64),
                             {c: features[c].tolist() for c in scorer.columns.categorical})
        scoring_s += time.perf_counter() - start
        records = pd.DataFrame({
            "scored_at": frame["as_of"], "request_id": f"day-{day}",
            "lead_id": frame["lead_id"], "as_of": frame["as_of"],
            "probability": scored["probability"], "score": scored["score"],
            "suggested_stage": scored["suggested_stage"], "rule_points": scored["rule_points"],
            "rule_stage": scored["rule_stage"], "model_name": MODEL_NAME,
            "model_version": "1", "input_bins": bins})
        records = records.astype({"scored_at": object, "as_of": object})
        records["scored_at"] = [t.to_pydatetime() for t in frame["as_of"]]
        records["as_of"] = records["scored_at"]
        with engine.begin() as connection:
            for first in range(0, len(records), INSERT_ROWS):
                connection.execute(predictions.insert(),
                                   records.iloc[first:first + INSERT_ROWS].to_dict("records"))
        written += len(records)
        day += DAYS_STEP
    engine.dispose()
    size = (folder / "predictions.db").stat().st_size
    return {"url": url, "rows": written, "days": list(range(1, day, DAYS_STEP)),
            "config": str(folder / "live.yaml"), "write_s": time.perf_counter() - started,
            "scoring_s": scoring_s, "db_mb": size / 1e6, "live_leads": live_leads,
            "data_end": end.isoformat()}


# ------------------------------------------------------------------ child cases
def monitor_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the ``monitor`` command in this fresh process; seconds and peak memory."""
    from typer.testing import CliRunner

    from predictive_scoring.cli import app

    start = time.perf_counter()
    result = CliRunner().invoke(app, ["monitor", "--prediction-log", spec["url"], "--config",
                                      spec["config"], "--out", spec["out"]],
                                env={"COLUMNS": "200", "NO_COLOR": "1"})
    seconds = time.perf_counter() - start
    if result.exit_code != 0:
        raise RuntimeError(result.output)
    return {"seconds": seconds, "peak_gib": peak_rss_gib()}


def floor_child(spec: dict[str, Any]) -> dict[str, Any]:
    """The bare read of the same rows and columns with ``sqlite3`` (fetchmany, nothing
    kept but a count): what any reader of the log pays."""
    path = spec["url"].removeprefix("sqlite:///")
    start = time.perf_counter()
    connection = sqlite3.connect(path)
    cursor = connection.execute(f"SELECT {', '.join(COLUMNS)} FROM lead_predictions")
    rows = 0
    while batch := cursor.fetchmany(100_000):
        rows += len(batch)
    connection.close()
    return {"seconds": time.perf_counter() - start, "peak_gib": peak_rss_gib(), "rows": rows}


def gauges_child(spec: dict[str, Any]) -> dict[str, Any]:
    """p99 of ``POST /v1/score`` (one lead, reasons on) with and without the drift work,
    interleaved request by request in one in-process service."""
    from dataclasses import replace

    from fastapi.testclient import TestClient

    from predictive_scoring.config import DatasetConfig, load_config
    from predictive_scoring.data.dataset import load_dataset
    from serving.app import create_app
    from serving.settings import Settings

    config = load_config(Path(spec["config"]), DatasetConfig)
    dataset = load_dataset(config, Path("."))
    leads = dataset.leads.head(GAUGE_LEADS)
    events = dataset.events.loc[dataset.events["lead_id"].isin(leads["lead_id"])]
    by_lead = dict(tuple(events.groupby("lead_id", observed=True)))
    bodies = []
    for _, lead in leads.iterrows():
        own = by_lead.get(lead["lead_id"], events.iloc[:0])
        as_of = lead["created_at"] + pd.Timedelta(days=30)
        bodies.append({
            "lead_id": lead["lead_id"], "created_at": lead["created_at"].isoformat(),
            "as_of": as_of.isoformat(),
            "attributes": {c: (None if pd.isna(lead[c]) else lead[c].item()
                               if isinstance(lead[c], np.generic) else lead[c])
                           for c in [*config.attributes.categorical,
                                     *config.attributes.numeric]},
            "events": [{"timestamp": t.isoformat(), "event_type": e,
                        "detail": None if pd.isna(d) else d}
                       for t, e, d in zip(own["timestamp"], own["event_type"],
                                          own["detail"], strict=True) if t < as_of]})
    key = "bench-monitor-key-0123456789"
    settings = Settings(model_uri=f"models:/{MODEL_NAME}/1", api_keys=(key,),
                        base_config=BASE_CONFIG, log_level="WARNING")
    times: dict[str, list[float]] = {"plain": [], "drift": []}
    with TestClient(create_app(settings)) as client:
        slot = client.app.state.slot
        deadline = time.monotonic() + 120
        while slot.current is None and time.monotonic() < deadline:
            time.sleep(0.1)
        models = {"drift": slot.current,
                  "plain": replace(slot.current, binner=None, drift=None)}
        headers = {"X-API-Key": key}
        for i in range(50):  # warm up both
            for model in models.values():
                slot.current = model
                client.post("/v1/score", json=bodies[i], headers=headers)
        for round_ in range(GAUGE_ROUNDS):
            for i, body in enumerate(bodies):
                order = ("plain", "drift") if (i + round_) % 2 == 0 else ("drift", "plain")
                for name in order:
                    slot.current = models[name]
                    start = time.perf_counter()
                    answer = client.post("/v1/score", json=body, headers=headers)
                    times[name].append(time.perf_counter() - start)
                    if answer.status_code != 200:
                        raise RuntimeError(answer.text)
    stats = {name: {"p50_ms": 1000 * float(np.percentile(v, 50)),
                    "p99_ms": 1000 * float(np.percentile(v, 99)), "n": len(v)}
             for name, v in times.items()}
    return {"stats": stats, "load": os.getloadavg()[0]}


CHILDREN = {"monitor": monitor_child, "floor": floor_child, "gauges": gauges_child}


def child(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    output = run_child("benchmarks.bench_monitor", "--child", name, json.dumps(spec))
    return json.loads(output.strip().splitlines()[-1])


# ------------------------------------------------------------------ the run
def measure(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/mlflow.db"
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    facts = {"load_start": os.getloadavg()[0]}
    facts["train"] = train_and_register(folder, args.train_leads)
    facts["log"] = write_log(folder, args.live_leads, args.rows)
    spec = {"url": facts["log"]["url"], "config": facts["log"]["config"],
            "out": str(folder / "monitoring")}
    facts["floor"] = child("floor", spec)
    facts["monitor"] = child("monitor", spec)
    facts["load_monitor"] = os.getloadavg()[0]
    facts["gauges"] = child("gauges", spec)
    facts["report"] = json.loads((folder / "monitoring" / "monitoring.json").read_text())
    if args.figure:
        save_figure(folder / "monitoring" / "monitoring.html", Path(args.figure))
    return facts


def save_figure(page: Path, target: Path) -> None:
    """The first figure of monitoring.html (the accuracy over time), as its PNG."""
    uri = re.search(r'src="data:image/png;base64,([^"]+)"', page.read_text()).group(1)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(base64.b64decode(uri))


def write_results(facts: dict[str, Any], args: argparse.Namespace) -> None:
    train, log, report = facts["train"], facts["log"], facts["report"]
    monitor, floor = facts["monitor"], facts["floor"]
    plain, drift = facts["gauges"]["stats"]["plain"], facts["gauges"]["stats"]["drift"]
    added = drift["p99_ms"] / plain["p99_ms"] - 1
    ok = monitor["seconds"] < MONITOR_TARGET_S
    body = f"""
## Monitoring (`python -m benchmarks.bench_monitor`)

{machine_info()}

Model: LightGBM, default config, trained on {train['leads']:,} simulated leads (seed
{TRAIN_SEED}) in {train['train_s']:.0f} s; {train['features']} inputs; test ROC-AUC
{train['roc_auc']:.3f} (points {train['rules_roc_auc']:.3f}). Log: {log['live_leads']:,}
other simulated leads (seed {LIVE_SEED}, the same law) scored with the batch path
{len(log['days'])} times each ({log['days'][0]} to {log['days'][-1]} days after creation,
none after the end of the data), with their input bins: {log['rows']:,} rows in a SQLite
prediction log ({log['db_mb']:.0f} MB; scoring {log['scoring_s']:.0f} s, all writing
{log['write_s']:.0f} s).

| step | rows | seconds | ratio to the floor | peak memory (GiB) | target |
|---|---:|---:|---:|---:|---|
{_row("floor: bare `sqlite3` read of the same columns (fresh process)",
       f"{floor['rows']:,}", f"{floor['seconds']:.1f}", "1.0", f"{floor['peak_gib']:.2f}", "")}
{_row("`monitor` command, end to end (fresh process)", f"{report['n_scored']:,}",
       f"{monitor['seconds']:.1f}", f"{monitor['seconds'] / floor['seconds']:.1f}",
       f"{monitor['peak_gib']:.2f}",
       f"< {MONITOR_TARGET_S:.0f} s: {'PASS' if ok else 'FAIL'}")}

`monitor` end to end: read and validate the dataset ({log['live_leads']:,} leads), load the
bundle from the MLflow registry, stream the log in chunks of 100,000 rows (each chunk's
input bins counted per model version and dropped, so memory grows with the scores, not
with the inputs), join the outcomes, metrics per month and version, drift, both files
with their plots. Peak memory is the process's `ru_maxrss`. Found: {report['n_matured']:,}
matured, {report['n_pending']:,} pending; realised ROC-AUC model
{report['model']['roc_auc']:.3f}, points {report['rules']['roc_auc']:.3f}; score PSI
{report['drift'][f'{MODEL_NAME}/1']['score']['psi']:.3f}.

### Online drift gauges: single-lead requests

| `POST /v1/score`, one lead, reasons on | requests | p50 (ms) | p99 (ms) |
|---|---:|---:|---:|
{_row("without the drift work", f"{plain['n']:,}", f"{plain['p50_ms']:.3f}",
       f"{plain['p99_ms']:.3f}")}
{_row("with the input bins and the drift window", f"{drift['n']:,}",
       f"{drift['p50_ms']:.3f}", f"{drift['p99_ms']:.3f}")}

Added to single-lead p99: **{100 * added:+.1f}%** (target < {100 * GAUGE_TARGET:.0f}%:
{'PASS' if added < GAUGE_TARGET else 'FAIL'}); at the median {1000 * (drift['p50_ms'] -
plain['p50_ms']):+.0f} µs. The two variants alternate request by request (the order
swapped every other lead and round), {GAUGE_ROUNDS} rounds over {GAUGE_LEADS:,} simulated
leads with their events (30 days after creation), through the ASGI test client in one
fresh process, prediction log off (its own cost is in the service section). The gauges
themselves are set every 256 leads and when `/metrics` is read.

1-minute load average: {facts['load_start']:.1f} at the start, {facts['load_monitor']:.1f}
after the monitor run, {facts['gauges']['load']:.1f} after the gauge run (2 cores shared
with other jobs). The figure in the README is this run's `monitoring.html` accuracy plot
(`--figure`).
"""
    update_section("bench_monitor", body)
    print(body)


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-leads", type=int, default=20_000)
    parser.add_argument("--live-leads", type=int, default=50_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--figure", default="docs/monitoring_accuracy.png",
                        help="where to save the accuracy plot ('' for nowhere)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, spec = args.child
        print(json.dumps(CHILDREN[name](json.loads(spec)), default=float))
        return
    with tempfile.TemporaryDirectory(prefix="bench_monitor_") as folder:
        write_results(measure(args, Path(folder)), args)


if __name__ == "__main__":
    main()
