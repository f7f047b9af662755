"""The Dask engine against the single-machine path: simulated leads to Parquet folders,
then examples (validation, snapshots, behaviour features, rules' points), training
(leakage check, LightGBM fit with early stopping, calibration, evaluation) and batch
scoring, each engine on the same files.

Usage: ``python -m benchmarks.bench_dask [--cases compare scale large memory] [--leads 300000]
[--workers 2] [--partitions 8] [--variant reduced|full] [--scale-leads 1000000]
[--large-leads 5000000] [--large-steps simulate dask] [--large-dir FOLDER]``.

Cases: ``compare`` runs both engines on ``--leads`` leads (examples, training, scoring);
``scale`` the Dask training alone on ``--scale-leads``; ``large`` simulates
``--large-leads`` to Parquet (and trains on Dask with ``--large-steps simulate dask``),
and scales the largest measured runs to that size as an estimate; ``memory`` trains on
Dask at each of ``--memory-leads`` (default 100k and 500k) and states the workers' memory
per 100k leads (the growth between the sizes) as a ratio to its floor, the float64
feature matrix of 100k leads (its own RESULTS section, ``bench_dask_memory``).

Every measurement runs in a fresh process. The Dask runs start a LocalCluster of
``--workers`` worker processes (one thread each) on 127.0.0.1 in that process; its peak
memory is the driver's (client and scheduler), and each worker's peak is both sampled
(psutil, every 0.2 s, per step) and read at the end from the worker's own ``ru_maxrss``.
The simulated data is written part by part (``simulate_funnel_parts``), so simulation
never holds more than one part in memory.

Targets (issue 7): the Dask model of equal quality (test ROC-AUC within 0.005 of the
single-machine model's on the same test rows); 5M simulated leads if they fit in this
machine's memory and a reasonable time, else the largest size that does, and why.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import resource
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from benchmarks._results import (
    BASE_CONFIG,
    SIMULATED_CONFIG,
    machine_info,
    memory_gib,
    peak_rss_gib,
    run_child,
    timed,
    update_section,
)
from benchmarks.bench_train import REDUCED_DETAIL_TYPES
from benchmarks.bench_train import simulated_config as dataset_config
from predictive_scoring import distributed as dist
from predictive_scoring import train as training
from predictive_scoring.config import (
    BaseConfig,
    ColumnNames,
    DatasetConfig,
    ModelConfig,
    ReadOptions,
    RulesConfig,
    load_config,
)
from predictive_scoring.data.dataset import load_dataset, read_scoring_events
from predictive_scoring.data.synthetic import simulate_funnel_parts, write_funnel_parts
from predictive_scoring.predict import score_file
from predictive_scoring.workflow import training as flow

SIMULATED = SIMULATED_CONFIG
BASE = BASE_CONFIG
MODEL = Path("configs/models/lightgbm.yaml")
SEED = 7
"""As bench_train's reduced variant: ~80 features (event-type keys, no detail pairs)."""
AUC_TOLERANCE = 0.005
LEADS_PER_PART = 100_000
CHUNK_ROWS = 200_000
"""The ``score`` command's default ``--chunk-rows``."""
SAMPLE_S = 0.2
READ = ReadOptions()
GIB = 2**30


# ------------------------------------------------------------------ helpers
def child(**spec: Any) -> dict[str, Any]:
    """Run one measurement in a fresh process; a failure is returned, not raised."""
    try:
        output = run_child("benchmarks.bench_dask", "--child", json.dumps(spec))
    except Exception as exc:  # a run that does not fit must not stop the others
        return {"case": spec["case"], "error": child_error(exc)}
    result = json.loads(output.strip().splitlines()[-1])
    print(result, flush=True)
    return result


def child_error(exc: Exception) -> str:
    """What stopped a child run, in one line: the signal that killed it (the system's
    out-of-memory killer sends SIGKILL), else its last line of standard error."""
    code = getattr(exc, "returncode", 0) or 0
    if code < 0:
        name = signal.Signals(-code).name
        return (f"killed by {name}" + (" (the system ran out of memory: the kernel's "
                                        "out-of-memory killer)" if name == "SIGKILL" else ""))
    stderr = str(getattr(exc, "stderr", "") or exc).strip().splitlines()
    return stderr[-1] if stderr else repr(exc)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class PeakSampler:
    """Samples the resident memory of some processes in a thread; peaks per step."""

    def __init__(self, pids: dict[str, int]) -> None:
        import psutil

        self._processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._current = dict.fromkeys(pids, 0)
        self._stage: tuple[str | None, dict[str, int]] = (None, dict.fromkeys(pids, 0))
        self.steps: dict[str, dict[str, float]] = {}
        self.stages: list[tuple[str, dict[str, float]]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, process in self._processes.items():
                try:
                    rss = process.memory_info().rss
                except Exception:  # a worker restarting for a moment
                    continue
                with self._lock:
                    self._current[name] = max(self._current[name], rss)
                    self._stage[1][name] = max(self._stage[1][name], rss)
            self._stop.wait(SAMPLE_S)

    def end_step(self, step: str) -> None:
        """Record the peaks since the previous step ended under ``step``; start anew."""
        with self._lock:
            self.steps[step] = {n: v / GIB for n, v in self._current.items()}
            self._current = dict.fromkeys(self._current, 0)

    def stage(self, name: str | None) -> None:
        """Record the peaks of the stage under way (if any) and start stage ``name``
        (None: none); stages are finer than steps and counted apart."""
        with self._lock:
            previous, peaks = self._stage
            if previous is not None:
                self.stages.append((previous, {n: v / GIB for n, v in peaks.items()}))
            self._stage = (name, dict.fromkeys(peaks, 0))


def _worker_pids(client: Any) -> dict[str, int]:
    pids = client.run(os.getpid)
    return {f"worker {i + 1}": pid for i, (_, pid) in enumerate(sorted(pids.items()))}


def _worker_peaks(client: Any) -> list[float]:
    """Each worker process's own peak resident memory (``ru_maxrss``), GiB."""
    peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return [peaks[address] / 2**20 for address in sorted(peaks)]


def _load_average() -> float:
    return os.getloadavg()[0]


# ------------------------------------------------------------------ child cases
def simulate(folder: str, leads: int, scoring_input: bool) -> dict[str, Any]:
    """Simulate ``leads`` leads part by part into Parquet folders (without the accounts'
    truth); the scoring input."""
    root = Path(folder)
    snapshots = load_config(SIMULATED, DatasetConfig).snapshots
    load, start = _load_average(), time.perf_counter()
    # the accounts' truth is most of the simulation's time, and no case here reads it
    parts = simulate_funnel_parts(leads, SEED, snapshots.days_after_creation,
                                  snapshots.horizon_days, LEADS_PER_PART,
                                  with_account_truth=False)
    folders = write_funnel_parts(parts, root)
    seconds = time.perf_counter() - start
    events = sum(pq.ParquetFile(f).metadata.num_rows for f in folders["events"].iterdir())
    size = sum(f.stat().st_size for d in folders.values() for f in d.iterdir())
    result = {"leads": leads, "events": events, "seconds": seconds,
              "parts": len(list(folders["events"].iterdir())), "parquet_mb": size / 1e6,
              "peak_gib": peak_rss_gib(), "load_avg": load}
    if scoring_input:
        table = pq.read_table(folders["leads"])
        as_of = pd.Timestamp(table.column("created_at").to_pandas().max())
        pq.write_table(table, root / "score_leads.parquet", row_group_size=CHUNK_ROWS)
        result["as_of"] = as_of.isoformat()
    return result


def local_train(folder: str, variant: str) -> dict[str, Any]:
    """The single-machine path: load, ``run_training`` (examples timed apart)."""
    config = dataset_config(Path(folder), variant)
    base = load_config(BASE, BaseConfig)
    load, cpu = _load_average(), _cpu_seconds()
    start = time.perf_counter()
    dataset = load_dataset(config, Path("."))
    loaded = time.perf_counter()
    steps: dict[str, float] = {}
    flow.build_examples = timed("examples", steps, flow.build_examples)
    run = flow.run_training(dataset, training.TrainingPlan(
        config, load_config(MODEL, ModelConfig), load_config(Path(config.rules), RulesConfig),
        base))
    end = time.perf_counter()
    (Path(folder) / "scorer_local.pkl").write_bytes(pickle.dumps(run.trained.scorer))
    return {"engine": "local", **_run_facts(run), "load_s": loaded - start,
            "examples_s": loaded - start + steps["examples"],
            "train_s": end - loaded - steps["examples"], "total_s": end - start,
            "cpu_per_s": (_cpu_seconds() - cpu) / (end - start),
            "driver_peak_gib": peak_rss_gib(), "load_avg": [load, _load_average()]}


def _run_facts(run: training.TrainingRun) -> dict[str, Any]:
    metrics = run.metrics
    classifier = run.trained.scorer.pipeline[-1]
    return {"snapshots": len(run.examples.frame), "n_train": metrics["n_train"],
            "n_valid": metrics["n_valid"], "n_test": metrics["n_test"],
            "features": len(run.examples.columns.all), "calibration": metrics["calibration"],
            "best_round": getattr(classifier, "best_iteration_", None),
            "roc_auc": metrics["model"]["roc_auc"], "log_loss": metrics["model"]["log_loss"],
            "oracle_roc_auc": (metrics["oracle"] or {}).get("roc_auc")}


def dask_train(folder: str, variant: str, workers: int, partitions: int,
               rounds: int | None = None) -> dict[str, Any]:
    """The Dask path on a fresh LocalCluster: the training flow on a
    ``PartitionedSource``, timed by stage; with ``rounds``, at most that many boosting
    rounds (the model config's otherwise)."""
    config = dataset_config(Path(folder), variant)
    model = load_config(MODEL, ModelConfig)
    if rounds is not None:
        model = model.model_copy(update={"params": {**model.params, "n_estimators": rounds}})
    inputs = dist.TrainingInputs(config, model,
                                 load_config(Path(config.rules), RulesConfig),
                                 load_config(BASE, BaseConfig))
    marks: list[tuple[str, float]] = []
    with dist.dask_client("local", workers) as client, \
            PeakSampler(_worker_pids(client)) as sampler:
        load, cpu = _load_average(), _cpu_seconds()
        start = time.perf_counter()

        def report(stage: str) -> None:
            marks.append((stage, time.perf_counter()))
            if stage.startswith("Checking for leakage"):
                sampler.end_step("examples")
            sampler.stage(stage)
            print(f"{marks[-1][1] - start:7.1f} s  {stage}", file=sys.stderr, flush=True)

        run = flow.train(dist.PartitionedSource(client, inputs, partitions), inputs, None,
                         report).run
        end = time.perf_counter()
        sampler.end_step("training")
        sampler.stage(None)
        worker_peaks = _worker_peaks(client)
    (Path(folder) / "scorer_dask.pkl").write_bytes(pickle.dumps(run.trained.scorer))
    examples_end = next(t for s, t in marks if s.startswith("Checking for leakage"))
    return {"engine": "dask", **_run_facts(run), "workers": workers,
            "partitions": partitions, "examples_s": examples_end - start,
            "train_s": end - examples_end, "total_s": end - start,
            "stages": [(s, t - start) for s, t in marks],
            "driver_cpu_per_s": (_cpu_seconds() - cpu) / (end - start),
            "driver_peak_gib": peak_rss_gib(), "worker_step_peaks_gib": sampler.steps,
            "worker_stage_peaks_gib": sampler.stages,
            "worker_peaks_gib": worker_peaks, "load_avg": [load, _load_average()]}


def local_score(folder: str, engine_of_scorer: str, as_of: str) -> dict[str, Any]:
    """``score_file`` on the scoring input with the events folder (as the CLI does)."""
    root = Path(folder)
    scorer = pickle.loads((root / f"scorer_{engine_of_scorer}.pkl").read_bytes())
    load, start = _load_average(), time.perf_counter()
    events, _ = read_scoring_events(root / "events.parquet", READ, ColumnNames())
    read = time.perf_counter()
    summary = score_file(scorer, root / "score_leads.parquet", events, pd.Timestamp(as_of),
                         root / "scores_local.parquet", CHUNK_ROWS, READ)
    end = time.perf_counter()
    return {"engine": "local", "rows": summary.rows_in, "scored": summary.rows_scored,
            "events_read_s": read - start, "seconds": end - start,
            "driver_peak_gib": peak_rss_gib(), "load_avg": [load, _load_average()]}


def dask_score(folder: str, engine_of_scorer: str, as_of: str, workers: int,
               partitions: int) -> dict[str, Any]:
    """``score_distributed`` of the same input on a fresh LocalCluster."""
    root = Path(folder)
    scorer = pickle.loads((root / f"scorer_{engine_of_scorer}.pkl").read_bytes())
    with dist.dask_client("local", workers) as client, \
            PeakSampler(_worker_pids(client)) as sampler:
        load, start = _load_average(), time.perf_counter()
        summary = dist.score_distributed(
            client, scorer, dist.ScoreRequest(root / "score_leads.parquet",
                                              root / "events.parquet", pd.Timestamp(as_of),
                                              root / "scores_dask"),
            dist.DaskPlan(partitions=partitions))
        end = time.perf_counter()
        sampler.end_step("scoring")
        worker_peaks = _worker_peaks(client)
    return {"engine": "dask", "rows": summary.rows_in, "scored": summary.rows_scored,
            "retried": len(summary.retried), "seconds": end - start,
            "driver_peak_gib": peak_rss_gib(), "worker_step_peaks_gib": sampler.steps,
            "worker_peaks_gib": worker_peaks, "load_avg": [load, _load_average()]}


CASES: dict[str, Callable[..., dict[str, Any]]] = {
    "simulate": simulate, "local_train": local_train, "dask_train": dask_train,
    "local_score": local_score, "dask_score": dask_score}


# ------------------------------------------------------------------ parent
def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Both engines on the same ``--leads`` simulated leads."""
    dask = {"workers": args.workers, "partitions": args.partitions}
    with tempfile.TemporaryDirectory(prefix="bench_dask_") as folder:
        sim = child(case="simulate", folder=folder, leads=args.leads, scoring_input=True)
        if "error" in sim:
            return {"simulation": sim}
        train = {"local": child(case="local_train", folder=folder, variant=args.variant),
                 "dask": child(case="dask_train", folder=folder, variant=args.variant, **dask)}
        score = {}
        if "error" not in train["local"]:
            score["local"] = child(case="local_score", folder=folder, engine_of_scorer="local",
                                   as_of=sim["as_of"])
        if "error" not in train["dask"]:
            score["dask"] = child(case="dask_score", folder=folder, engine_of_scorer="dask",
                                  as_of=sim["as_of"], **dask)
    return {"simulation": sim, "train": train, "score": score}


def scale(args: argparse.Namespace) -> dict[str, Any]:
    """The Dask path alone on ``--scale-leads`` leads (how its memory and time grow)."""
    with tempfile.TemporaryDirectory(prefix="bench_dask_scale_") as folder:
        sim = child(case="simulate", folder=folder, leads=args.scale_leads,
                    scoring_input=False)
        if "error" in sim:
            return {"simulation": sim}
        run = child(case="dask_train", folder=folder, variant=args.variant,
                    workers=args.workers, partitions=args.scale_partitions)
    return {"simulation": sim, "dask": run}


def large(args: argparse.Namespace) -> dict[str, Any]:
    """``--large-leads`` simulated part by part; the Dask training on them if asked.

    With ``--large-dir`` the simulated files are kept there, and a later run with the
    same folder and size trains on them instead of simulating again (``simulate`` then
    ``dask`` as two runs)."""
    if args.large_dir is None:
        with tempfile.TemporaryDirectory(prefix="bench_dask_large_") as folder:
            return large_in(folder, args)
    Path(args.large_dir).mkdir(parents=True, exist_ok=True)
    return large_in(args.large_dir, args)


def large_in(folder: str, args: argparse.Namespace) -> dict[str, Any]:
    marker = Path(folder) / "simulation.json"
    kept = json.loads(marker.read_text()) if marker.exists() else None
    if "simulate" in args.large_steps or kept is None or kept["leads"] != args.large_leads:
        sim = child(case="simulate", folder=folder, leads=args.large_leads,
                    scoring_input=False)
        if "error" not in sim:
            marker.write_text(json.dumps(sim))
    else:
        sim = kept
    result: dict[str, Any] = {"simulation": sim}
    if "dask" in args.large_steps and "error" not in sim:
        result["dask"] = child(case="dask_train", folder=folder, variant=args.variant,
                               workers=args.workers, partitions=args.large_partitions,
                               rounds=args.large_rounds)
    return result


# ------------------------------------------------------------------ report
MEMORY_PARTITION_LEADS = 50_000
"""Leads per partition in the memory case, the same at every size: the growth between
sizes is then the memory held per lead, not a larger partition's working memory."""


def memory(args: argparse.Namespace) -> dict[str, Any]:
    """The Dask training at each of ``--memory-leads`` (:data:`MEMORY_PARTITION_LEADS`
    leads a partition)."""
    runs = []
    for leads in args.memory_leads:
        with tempfile.TemporaryDirectory(prefix="bench_dask_memory_") as folder:
            sim = child(case="simulate", folder=folder, leads=leads, scoring_input=False)
            run = (child(case="dask_train", folder=folder, variant=args.variant,
                         workers=args.workers,
                         partitions=max(args.workers, round(leads / MEMORY_PARTITION_LEADS)))
                   if "error" not in sim else sim)
        runs.append({"leads": leads, "simulation": sim, "dask": run})
    return {"runs": runs}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


MEMORY_TARGET_GIB = 0.3
"""Issue 21: worker memory per 100k leads at most 0.3 GiB (1.2 GiB before)."""
LARGE_LEADS = 5_000_000
LARGE_FITS_GIB = 15.0
"""Worker memory (both workers) up to which the 5M-lead run is planned on this machine
(24 GiB, shared with other work)."""
BEFORE = ("Before LightGBM trained on the workers' own rows without lightgbm.dask "
          "(`models.kinds.lightgbm_dask`): 0.18 GiB per 100k leads at the peak, the training "
          "step growing 0.39 GiB (2026-12-07 10:15 UTC, 100,000 and 500,000 leads: 1.00 / "
          "1.01 and 1.36 / 1.36 GiB per worker, the training step 0.55 / 0.56 and 1.31 / "
          "1.34 GiB), when lightgbm.dask's check that every worker had validation rows "
          "fetched a training part of each worker to the client: each worker serialised "
          "its whole block once more as the fit began, and the driver received every "
          "training row. "
          "Before each step's results were released task by task (`store.gather_each`): "
          "0.43 GiB per 100k leads (2026-12-07 08:23 UTC, 100,000 and 500,000 leads: 1.00 / "
          "1.01 and 1.84 / 1.88 GiB per worker; 1.83 / 1.82 GiB in the shuffle and "
          "validation), when each partition's validation facts, empty frames cut from its "
          "Arrow columns, held those columns on its worker until the last partition was "
          "validated (300,000 leads in 6 partitions: 1.41 GiB a worker there, 0.92 GiB "
          "still held after it; now 1.01 / 1.07 and 0.30 GiB). "
          "Before the workers kept their partitions on disk: 0.82 GiB per 100k leads "
          "(2026-12-07 05:08 UTC: 1.08 / 1.09 GiB per worker at 100,000 leads and 1.77 / "
          "2.04 GiB at 300,000), when a worker held every partition's validated tables and "
          "snapshots until it featurised them, then every partition's examples until they "
          "were encoded, and the encoded rows twice while they were stacked; the first run "
          "with the partitions kept on disk (2026-12-07 07:09 UTC, 100,000 and 300,000 "
          "leads): 1.02 / 1.01 and 1.64 / 1.45 GiB, 0.53 GiB per 100k leads, its peak in "
          "the shuffle and validation at every size (at 300,000 leads 1.43 / 1.44 GiB "
          "there, at most 0.87 GiB in every later stage); 0.56 GiB (2026-12-07 08:04 UTC, "
          "100,000 and 500,000 leads: 1.03 / 1.01 and 2.10 / 2.16 GiB, 2.04 / 2.10 in the "
          "shuffle and validation) while the shuffle's partitions of each table waited in "
          "memory for the other tables' (they are now kept on disk as the shuffle gives "
          "them). "
          "Earlier: 0.86 GiB per 100k leads (this case, 2026-12-06 20:42 UTC: 1.22 / 1.24 GiB "
          "per worker at 100,000 leads and 1.89 / 2.27 GiB at 300,000; test ROC-AUC 0.8531 "
          "and 0.8544), 2.7x the float64 feature matrix, when the workers held the features "
          "as float64 from featurisation through the fit, the examples' text columns as "
          "text, every partition's snapshots until the open leads were found and its "
          "whole examples until every slice was stacked, and lightgbm.dask concatenated "
          "each worker's block and validation copy into new arrays (a second copy of both "
          "during the fit). Then 0.62 GiB (2026-12-06 23:08 UTC: 1.33 / 1.21 and 1.91 / "
          "1.87 GiB; ROC-AUC 0.8533 and 0.8543) once the model read float32 on every path "
          "(one machine, Dask, batch, API), the examples held their features as float32 "
          "and their text columns coded, a partition's snapshots left once its examples "
          "were built and its examples once its slices were encoded, and lightgbm.dask got "
          "frames over the stacked blocks (pandas keeps one frame's memory where numpy "
          "copies). Then 0.72 GiB (2026-12-06 23:52 UTC: 1.22 / 1.20 and 1.94 / 1.92 GiB; "
          "ROC-AUC 0.8533 and 0.8546) once a partition's rows as read were held only until "
          "it was validated (the training step's peaks at 300,000 leads fell from 1.72 / "
          "1.67 to 1.20 / 1.38 GiB; the examples step, the peak, stayed at 1.9 GiB a "
          "worker). Now the workers' Arrow memory comes from the C allocator (Arrow's "
          "mimalloc kept what a worker freed: 50k leads' tables validated in one process "
          "left 0.95 GiB resident, 0.49 GiB with the C allocator), the text columns of few "
          "values are shuffled coded, the open leads' sample is built before the examples "
          "and each partition's tables and snapshots leave its worker as soon as it is "
          "featurised: every size's peaks fell (100,000 leads: 2.42 -> 2.17 GiB both "
          "workers; 300,000: 3.87 -> 3.81 GiB, its training step 1.20 / 1.38 -> 0.98 / 1.17 "
          "GiB) but the growth did not (0.82 against 0.72 GiB, about the spread between "
          "the two workers of one run, 1.77 / 2.04 GiB). The peak at 300,000 leads is "
          "still where featurising starts, when a worker holds every partition's "
          "validated tables and snapshots (about 0.12 GB of data per 50k leads) and "
          "about 0.7 GiB more resident memory than that data, which grows with the "
          "partitions it holds. "
          "Earlier: 0.65 GiB per 100k leads (2026-12-06 17:24 UTC) when the "
          "simulated config snapshotted each lead at 7 and 30 days only (a third of "
          "today's snapshots), and 1.09 GiB (2026-12-04) when lightgbm.dask gave each "
          "worker one copy of the validation slice per partition it held.")


def memory_lines(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Worker memory per 100k leads, each size and the growth between the sizes."""
    lines = ["## Dask worker memory per 100k leads (`python -m benchmarks.bench_dask "
             "--cases memory`)", "", machine_info(), "",
             "| leads | partitions | snapshots | features | floor: feature matrix (GiB) "
             "| worker peaks (GiB, ru_maxrss) | workers together | per 100k leads "
             "| / floor | examples step (GiB, sampled) | training step (GiB, sampled) "
             "| total (s) | test ROC-AUC | load avg |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    done = [r for r in result["runs"] if "error" not in r["dask"]]
    for r in result["runs"]:
        run = r["dask"]
        if "error" in run:
            lines.append(f"| {r['leads']:,} | failed: {run['error']} |" + " |" * 12)
            continue
        floor = run["snapshots"] * run["features"] * 8 / GIB
        together = sum(run["worker_peaks_gib"])
        per = together / (r["leads"] / 100_000)
        lines.append(f"| {r['leads']:,} | {run['partitions']} | {run['snapshots']:,} "
                     f"| {run['features']} | {floor:.3f} | {_gib(run['worker_peaks_gib'])} "
                     f"| {together:.2f} | {per:.2f} | {together / floor:.1f} "
                     f"| {_step_peaks(run, 'examples')} | {_step_peaks(run, 'training')} "
                     f"| {run['total_s']:.0f} | {run['roc_auc']:.4f} | {_load(run)} |")
    if len(done) >= 2:
        small, big = done[0], done[-1]
        hundreds = (big["leads"] - small["leads"]) / 100_000
        growth = (sum(big["dask"]["worker_peaks_gib"])
                  - sum(small["dask"]["worker_peaks_gib"])) / hundreds
        floor = (big["dask"]["snapshots"] - small["dask"]["snapshots"]) * \
            big["dask"]["features"] * 8 / GIB / hundreds
        base = sum(small["dask"]["worker_peaks_gib"]) - growth * small["leads"] / 100_000
        fastest, rate = max(steps_growth(small, big, hundreds).items(), key=lambda kv: kv[1])
        judged = max(growth, rate)
        lines += ["", f"**Growth: {growth:.2f} GiB of worker memory per 100k leads** "
                  f"({small['leads']:,} -> {big['leads']:,} leads), {growth / floor:.1f}x "
                  f"its floor (the float64 feature matrix of 100k leads' snapshots, "
                  f"{floor:.3f} GiB); its fastest-growing step, {fastest}, grows "
                  f"{rate:.2f} GiB per 100k leads and makes the peak on more leads. Target "
                  f"<= {MEMORY_TARGET_GIB} GiB, judged on the larger ({judged:.2f}): "
                  f"{verdict(judged <= MEMORY_TARGET_GIB)}. Fixed part (the workers' "
                  f"libraries, the cluster and a partition's working memory): {base:.2f} GiB. "
                  + step_growth(small, big, hundreds) + " " + stage_peaks(big),
                  "", large_projection(base, growth, done, args), "", BEFORE]
    lines += ["", "Worker peaks: each worker process's own `ru_maxrss` at the end of "
              "`workflow.training.train` over `PartitionedSource` (reading, validation, "
              "snapshots, features, leakage check, "
              "LightGBM on the workers, calibration and evaluation). Feature set: "
              f"{args.variant}. LocalCluster of {args.workers} worker processes x 1 thread."]
    return lines


def _step(run: dict[str, Any], step: str) -> list[float]:
    """Each worker's sampled peak during one step of a run."""
    return list(run.get("worker_step_peaks_gib", {}).get(step, {}).values())


def steps_growth(small: dict[str, Any], big: dict[str, Any], hundreds: float
                 ) -> dict[str, float]:
    """How each step's sampled peak (both workers together) grows per 100k leads: the
    step that is the peak can change with the data's size."""
    return {step: (sum(_step(big["dask"], step)) - sum(_step(small["dask"], step)))
            / hundreds for step in ("examples", "training")}


def step_growth(small: dict[str, Any], big: dict[str, Any], hundreds: float) -> str:
    """:func:`steps_growth` as a sentence."""
    parts = [f"{step} {rate:.2f}" for step, rate in steps_growth(small, big, hundreds).items()]
    return ("By step (sampled resident memory, both workers), growth per 100k leads: "
            + ", ".join(parts) + " GiB.")


def stage_peaks(run: dict[str, Any]) -> str:
    """Each stage's sampled peak per worker in one run (where the memory goes)."""
    if not run["dask"].get("worker_stage_peaks_gib"):
        return ""
    return (f"Stages at {run['leads']:,} leads (sampled peak per worker, GiB): "
            f"{_stage_peak_list(run['dask'])}.")


def _stage_peak_list(run: dict[str, Any]) -> str:
    """One Dask run's sampled peak per worker, stage by stage."""
    return "; ".join(f"{name} {_gib(list(peaks.values()))}"
                     for name, peaks in run.get("worker_stage_peaks_gib", []))


def large_projection(base: float, growth: float, runs: list[dict[str, Any]],
                     args: argparse.Namespace) -> str:
    """What the measured growth says of :data:`LARGE_LEADS` leads: worker memory (the
    larger of the peak's and of each step's own growth from the largest run), time (the
    largest run's, scaled linearly) and whether that fits this machine."""
    big = runs[-1]
    more = (LARGE_LEADS - big["leads"]) / 100_000
    memory = base + growth * LARGE_LEADS / 100_000
    for step in ("examples", "training"):
        steps = [r for r in runs if _step(r["dask"], step)]
        if len(steps) >= 2:
            small, large_run = steps[0], steps[-1]
            rate = ((sum(_step(large_run["dask"], step)) - sum(_step(small["dask"], step)))
                    / ((large_run["leads"] - small["leads"]) / 100_000))
            memory = max(memory, sum(_step(large_run["dask"], step)) + rate * more)
    hours = big["dask"]["total_s"] * LARGE_LEADS / big["leads"] / 3600
    simulate_h = big["simulation"]["seconds"] * LARGE_LEADS / big["leads"] / 3600
    fits = memory <= LARGE_FITS_GIB
    return (f"At that rate (each step's peak grown at its own rate from the largest run, "
            f"the largest taken) {LARGE_LEADS:,} leads need ~{memory:.1f} GiB of worker "
            f"memory on {args.workers} workers (~{memory / args.workers:.1f} GiB each; this "
            f"machine has {memory_gib():.0f} GiB, shared): "
            + ("within" if fits else "above") + f" the {LARGE_FITS_GIB:.0f} GiB planned "
            f"for both workers. Scaled from {big['leads']:,} leads, the training would take "
            f"~{hours:.1f} h on this shared machine, after ~{simulate_h:.1f} h simulating "
            f"the leads (`--cases large --large-steps simulate dask` runs both; a "
            f"projection, not a measurement, unless a large-case section says otherwise).")


def _gib(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def _step_peaks(run: dict[str, Any], step: str) -> str:
    return _gib(_step(run, step)) or "-"


def _load(run: dict[str, Any]) -> str:
    return " -> ".join(f"{v:.1f}" for v in run["load_avg"])


TRAIN_HEADER = [
    "| engine | snapshots (train / valid / test) | features | examples (s) "
    "| examples: events/s | training (s) | total (s) | snapshots/s | best round "
    "| test ROC-AUC | oracle ROC-AUC | driver peak (GiB) | worker peaks: examples | worker "
    "peaks: training | worker peaks (ru_maxrss) | load avg |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]


def train_row(engine: str, run: dict[str, Any], events: int) -> str:
    """One training run as a row under :data:`TRAIN_HEADER`."""
    if "error" in run:
        return f"| {engine} | failed: {run['error']} |" + " |" * 14
    oracle = f"{run['oracle_roc_auc']:.4f}" if run["oracle_roc_auc"] else "-"
    return (f"| {engine} | {run['snapshots']:,} ({run['n_train']:,} / {run['n_valid']:,} / "
            f"{run['n_test']:,}) | {run['features']} | {run['examples_s']:.0f} "
            f"| {events / run['examples_s']:,.0f} | {run['train_s']:.0f} "
            f"| {run['total_s']:.0f} | {run['snapshots'] / run['total_s']:,.0f} "
            f"| {run['best_round']} | {run['roc_auc']:.4f} | {oracle} "
            f"| {run['driver_peak_gib']:.2f} | {_step_peaks(run, 'examples')} "
            f"| {_step_peaks(run, 'training')} "
            f"| {_gib(run.get('worker_peaks_gib', [])) or '-'} | {_load(run)} |")


def _simulated(sim: dict[str, Any]) -> str:
    return (f"Simulated {sim['leads']:,} leads ({sim['events']:,} events) part by part "
            f"({LEADS_PER_PART:,} leads per part, one part in memory at a time; without "
            f"the accounts' truth, which no case reads) into "
            f"{sim['parts']} Parquet part file(s) per table ({sim['parquet_mb']:,.0f} MB) in "
            f"{sim['seconds']:.0f} s, peak {sim['peak_gib']:.2f} GiB (load avg "
            f"{sim['load_avg']:.1f} at the start).")


def compare_lines(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    sim = result["simulation"]
    lines = [f"### Both engines on {args.leads:,} simulated leads", ""]
    if "error" in sim:
        return [*lines, f"Simulation failed: {sim['error']}"]
    lines += [_simulated(sim) + " Feature set: " + args.variant
              + (f" (`detail_event_types: {REDUCED_DETAIL_TYPES}`)"
                 if args.variant == "reduced" else " (default config)")
              + f"; model: `{MODEL}` (early stopping on the validation slice). Dask: "
              f"LocalCluster of {args.workers} worker processes x 1 thread on 127.0.0.1, "
              f"{args.partitions} lead partitions; local: one process, LightGBM on 2 "
              "threads.", "", *TRAIN_HEADER]
    train = result["train"]
    lines += [train_row(engine, run, sim["events"]) for engine, run in train.items()]
    if all("error" not in r for r in train.values()):
        gap = train["dask"]["roc_auc"] - train["local"]["roc_auc"]
        same = train["dask"]["n_test"] == train["local"]["n_test"]
        verdict = "PASS" if abs(gap) <= AUC_TOLERANCE else "FAIL"
        lines += ["", f"Equal quality: Dask - local test ROC-AUC = {gap:+.4f} on "
                  f"{'the same' if same else 'DIFFERENT'} {train['local']['n_test']:,} test "
                  f"snapshots: **{verdict}** (target within {AUC_TOLERANCE})."]
    return [*lines, *score_lines(result, args), "", *NOTES,
            *_stage_lines(train.get("dask", {}))]


def score_lines(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    score, sim = result["score"], result["simulation"]
    if not score:
        return []
    lines = ["", "| batch scoring | leads | seconds | leads/s | driver peak (GiB) "
             "| worker peaks, sampled (GiB) | worker peaks, ru_maxrss (GiB) | load avg |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for engine, run in score.items():
        if "error" in run:
            lines.append(f"| {engine} | failed: {run['error']} | | | | | | |")
            continue
        lines.append(f"| {engine} | {run['rows']:,} | {run['seconds']:.0f} "
                     f"| {run['rows'] / run['seconds']:,.0f} "
                     f"| {run['driver_peak_gib']:.2f} | {_step_peaks(run, 'scoring')} "
                     f"| {_gib(run.get('worker_peaks_gib', [])) or '-'} | {_load(run)} |")
    return [*lines, "", f"Scoring: every simulated lead at one moment (`as_of` = the last "
            f"creation time, {sim['as_of'][:10]}) with all its events, each engine with the "
            "bundle it trained; local: `read_scoring_events` of the events folder, then "
            f"`score_file` in chunks of {CHUNK_ROWS:,} rows; Dask: `score_distributed` into "
            f"a folder of {args.partitions} part files (rows in = rows out checked)."]


NOTES = [
    "Examples: local = loading and validating the Parquet folders plus `build_examples`; "
    "Dask = reading, shuffling by lead, validating, snapshots, vocabulary and features per "
    "partition (until the leakage check starts). Training: leakage check, fit, calibration, "
    "thresholds and test evaluation. Driver peak is the process's `ru_maxrss` (for Dask: "
    "client and scheduler). Worker peaks: sampled resident memory of each worker process per "
    f"step (psutil every {SAMPLE_S} s), and each worker's own `ru_maxrss` at the end. Load "
    "avg: 1-minute load average at the start and at the end of the run (2 cores, shared "
    "with other work)."]


def _stage_lines(run: dict[str, Any]) -> list[str]:
    if "stages" not in run:
        return []
    return ["", f"Dask stages at {run['snapshots']:,} snapshots (seconds from the start): "
            + "; ".join(f"{stage} {t:.0f}" for stage, t in run["stages"]) + "."]


def scale_lines(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    sim = result["simulation"]
    lines = [f"### Dask alone on {args.scale_leads:,} simulated leads", ""]
    if "error" in sim:
        return [*lines, f"Simulation failed: {sim['error']}"]
    return [*lines, _simulated(sim) + f" Same settings, {args.scale_partitions} lead "
            "partitions.", "", *TRAIN_HEADER,
            train_row("dask", result["dask"], sim["events"]),
            *_stage_lines(result["dask"])]


def large_lines(result: dict[str, Any], args: argparse.Namespace,
                measured: list[tuple[int, dict[str, Any]]]) -> list[str]:
    sim = result["simulation"]
    lines = [f"### {args.large_leads:,} simulated leads", ""]
    if "error" in sim:
        return [*lines, f"Simulation part by part failed: {sim['error']}"]
    lines.append(_simulated(sim))
    run = result.get("dask")
    if run is not None:
        lines += ["", f"Dask training on them ({args.large_partitions} partitions"
                  + (f", at most {args.large_rounds} boosting rounds" if args.large_rounds
                     else "") + "):", "",
                  *TRAIN_HEADER, train_row("dask", run, sim["events"])]
        if "error" not in run:
            lines += [*_stage_lines(run), "", large_stage_peaks(run),
                      *([] if not args.large_rounds else ["", capped_fit(run, args)]),
                      "", LARGE_BEFORE]
    return [*lines, *scaled_lines(measured, args, run is not None)]


LARGE_BEFORE = (
    "Before (2026-12-07 10:49 UTC, the same files, 100 partitions, at most 300 rounds): "
    "killed by the out-of-memory killer 1,625 s after the start, as the fit began, the "
    "driver at 9.2 GiB and the workers at 5.7 / 4.6 GiB and growing. lightgbm.dask fetched "
    "a training part of every worker to the driver before it trained (the whole training "
    "matrix, ~5 GB here; LightGBM now trains on each worker's own rows, "
    "`models.kinds.lightgbm_dask`), the driver held the points' stage as one Python string "
    "per snapshot (now shared strings) and kept the memory it freed (now "
    "`cluster.return_freed_memory`). Before that the leakage check gave every training "
    "row a Python string (a first attempt stopped there, the driver past 14 GB).")


def large_stage_peaks(run: dict[str, Any]) -> str:
    """Each stage's sampled peak per worker, and the workers' own peaks."""
    return (f"Sampled peak per worker, by stage (GiB): {_stage_peak_list(run)}"
            f". Each worker's own peak (`ru_maxrss`): {_gib(run['worker_peaks_gib'])} GiB; "
            f"the driver's (client and scheduler): {run['driver_peak_gib']:.2f} GiB.")


def capped_fit(run: dict[str, Any], args: argparse.Namespace) -> str:
    """What a capped run says of the model config's full fit: its time per round."""
    fit = next(t for name, t in run["stages"] if name.startswith("Training"))
    after = next(t for name, t in run["stages"] if name.startswith("Calibrating"))
    params = load_config(MODEL, ModelConfig).params
    ran = min(args.large_rounds, run["best_round"] + params["early_stopping_rounds"])
    per_round, full = (after - fit) / max(ran, 1), params["n_estimators"]
    return (f"The fit was capped at {args.large_rounds} rounds (best round "
            f"{run['best_round']}, {ran} rounds run) so that the whole run fits a "
            "working session on this machine; its memory is the full fit's (LightGBM "
            "builds its datasets and buffers before the first round), its quality is "
            f"not. The fit stage (encoding the rows included) took {after - fit:.0f} s, "
            f"{per_round:.2f} s a round: the config's {full:,} rounds, which 500,000 "
            f"leads nearly use up, would take ~{per_round * full / 3600:.1f} h.")


def scaled_lines(measured: list[tuple[int, dict[str, Any]]], args: argparse.Namespace,
                 ran: bool) -> list[str]:
    """The largest measured runs of each engine, scaled linearly to ``--large-leads``."""
    largest = {}
    for leads, run in measured:
        if "error" not in run and leads >= largest.get(run["engine"], (0, None))[0]:
            largest[run["engine"]] = (leads, run)
    if not largest:
        return []
    parts = []
    total = 0.0
    for engine, (leads, run) in sorted(largest.items()):
        factor = args.large_leads / leads
        memory = run["driver_peak_gib"] + sum(run.get("worker_peaks_gib", []))
        total = max(total, memory * factor)
        who = ("one process" if engine == "local"
               else f"driver and {args.workers} workers together")
        parts.append(f"{engine} (from {leads:,} leads, x{factor:.1f}): ~{memory * factor:.0f} "
                     f"GiB ({who}) and ~{run['total_s'] * factor / 60:.0f} min to train")
    lines = ["", "Scaled linearly from the largest measured run of each engine (an "
             "estimate, not a measurement): " + "; ".join(parts) + f". This machine has "
             f"{memory_gib():.0f} GiB. Both paths hold the whole data set in memory while "
             "training: the single-machine path its tables and examples in one process, the "
             "Dask path every partition's tables, validated rows, snapshots, examples and "
             "model input on the workers until training ends. Dask divides that memory "
             f"among its workers, so {args.large_leads:,} leads need a cluster with about "
             f"that much memory in all (at least {math.ceil(total / memory_gib())} machines "
             "like this one), not this machine alone."]
    if not ran:
        lines[-1] += (" The Dask training was therefore not run at this size here "
                      "(`--large-steps simulate dask` runs it).")
    return lines


def write_results(sections: dict[str, Any], args: argparse.Namespace) -> None:
    lines = ["## Dask engine (`python -m benchmarks.bench_dask`)", "", machine_info(), ""]
    measured: list[tuple[int, dict[str, Any]]] = []
    if "compare" in sections:
        lines += [*compare_lines(sections["compare"], args), ""]
        measured += [(args.leads, r) for r in sections["compare"].get("train", {}).values()]
    if "scale" in sections:
        lines += [*scale_lines(sections["scale"], args), ""]
        if "dask" in sections["scale"]:
            measured.append((args.scale_leads, sections["scale"]["dask"]))
    main_cases = "compare" in sections or "scale" in sections
    if "large" in sections and main_cases:
        lines += [*large_lines(sections["large"], args, measured), ""]
    if main_cases:
        update_section("bench_dask", "\n".join(lines))
        print("\n".join(lines))
    elif "large" in sections:  # run on its own (simulated, then trained, in two runs)
        large_text = "\n".join(["## Dask engine, large case (`python -m benchmarks.bench_dask "
                                "--cases large`)", "", machine_info(), "",
                                *large_lines(sections["large"], args, measured)])
        update_section("bench_dask_large", large_text)
        print(large_text)
    if "memory" in sections:
        memory_text = "\n".join(memory_lines(sections["memory"], args))
        update_section("bench_dask_memory", memory_text)
        print(memory_text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+",
                        choices=["compare", "scale", "large", "memory"],
                        default=["compare", "scale", "large"])
    parser.add_argument("--leads", type=int, default=300_000,
                        help="simulated leads for the comparison of both engines")
    parser.add_argument("--variant", choices=["reduced", "full"], default="reduced")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--scale-leads", type=int, default=1_000_000,
                        help="simulated leads for the Dask path alone (how it grows)")
    parser.add_argument("--scale-partitions", type=int, default=16)
    parser.add_argument("--large-leads", type=int, default=5_000_000)
    parser.add_argument("--large-steps", nargs="+", choices=["simulate", "dask"],
                        default=["simulate"])
    parser.add_argument("--large-partitions", type=int, default=64)
    parser.add_argument("--large-rounds", type=int, help="at most this many boosting rounds "
                        "in the large case's training (the model config's by default): "
                        "its memory and stages at a time a session allows")
    parser.add_argument("--large-dir", help="keep the large case's simulated files in this "
                        "folder; a later run with the same folder and size trains on them "
                        "(--large-steps dask) without simulating again")
    parser.add_argument("--memory-leads", nargs="+", type=int, default=[100_000, 500_000],
                        help="simulated leads of the memory case's runs, smallest first")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(CASES[spec.pop("case")](**spec), default=float))
        return
    sections: dict[str, Any] = {}
    if "compare" in args.cases:
        sections["compare"] = compare(args)
    if "scale" in args.cases:
        sections["scale"] = scale(args)
    if "large" in args.cases:
        sections["large"] = large(args)
    if "memory" in args.cases:
        sections["memory"] = memory(args)
    write_results(sections, args)


if __name__ == "__main__":
    main()
