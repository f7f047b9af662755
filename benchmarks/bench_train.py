"""Training: quality against the oracle and the rules on simulated data, the same split and
training code on the public datasets, and the speed and peak memory of ``train_model`` on
about a million snapshots.

Usage: ``python -m benchmarks.bench_train [--cases quality real speed] [--quality-leads
100000] [--speed-leads 500000]``. Simulated data goes to Parquet in a temporary folder; every
measurement runs in a fresh process, so each peak memory is that run's own.

Targets (issue 17):
- quality, 100k simulated leads, seeds 3 and 7, LightGBM, the shipped simulated config
  (snapshots spread over lead ages 1-365 days): ROC-AUC within 0.005 of the oracle's, log
  loss within 1% of the oracle's, ECE < 0.02 in every lead-age band with >= 50
  converters, ROC-AUC >= the rules' + 0.05;
- real data: bank marketing ROC-AUC >= 0.79, online shoppers >= 0.92;
- speed: 1M snapshots x ~80 features trained (fit, early stopping, calibration,
  evaluation) in under 2 minutes on 2 cores with peak memory under 8 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._results import (
    BASE_CONFIG,
    SIMULATED_CONFIG,
    machine_info,
    peak_rss_gib,
    run_child,
    timed,
    update_section,
)
from predictive_scoring import train as training
from predictive_scoring.config import (
    BaseConfig,
    DatasetConfig,
    ModelConfig,
    RulesConfig,
    load_config,
)
from predictive_scoring.data.dataset import load_dataset
from predictive_scoring.data.synthetic import PARQUET_FILES, simulate_funnel, write_funnel
from predictive_scoring.workflow.training import run_training

SIMULATED = SIMULATED_CONFIG
BASE = BASE_CONFIG
SEED = 7
QUALITY_SEEDS = (3, 7)
SPEED_AGES = [7, 30]
"""The speed case keeps two snapshot ages (about 2 snapshots per lead, as its target's 1M
snapshots from 500k leads assume); quality uses the shipped config's spread of ages."""
GAP_LIMIT, LOG_LOSS_LIMIT, BAND_ECE_LIMIT, BAND_MIN_POSITIVES = 0.005, 0.01, 0.02, 50
REAL = {"bank_marketing": 0.79, "online_shoppers": 0.92, "olist_mqls": None}
WITHOUT_PAGE_VALUES = "online_shoppers without PageValues"
REDUCED_DETAIL_TYPES = ["demo_request"]
"""The ~80-feature variant: per-detail keys only for a type that has no details, so the
behaviour features are the 13 event-type keys (12 types + ``__other__``) and no
``(type, detail)`` pairs."""
SPEED_TARGET_S, SPEED_MEMORY_GB = 120.0, 8.0
GIB_LIMIT = SPEED_MEMORY_GB * 1e9 / 2**30
BORDERLINE = 0.25
"""A target run (the ~80-feature set) within 25% of its time or memory target is measured
until three uncontended runs are in (their median is reported)."""
UNCONTENDED, MAX_ATTEMPTS = 1.75, 6
"""A training run counts when it got at least 1.75 CPU seconds per wall second (2 threads
on 2 cores): other processes share this machine and LightGBM's threads slow down badly
when one of them loses its core."""


# ------------------------------------------------------------------ helpers
def simulated_config(folder: Path, variant: str = "full",
                     ages: list[int] | None = None) -> DatasetConfig:
    """The simulated dataset config pointed at Parquet files in ``folder`` (with other
    snapshot ages when given)."""
    config = load_config(SIMULATED, DatasetConfig)
    config = config.pointed_at(folder, PARQUET_FILES)
    if ages is not None:
        config = config.model_copy(update={"snapshots": config.snapshots.model_copy(
            update={"days_after_creation": ages})})
    if variant != "reduced":
        return config
    return config.model_copy(update={"features": config.features.model_copy(
        update={"detail_event_types": REDUCED_DETAIL_TYPES})})


def real_config(name: str) -> DatasetConfig:
    """A public dataset's config; the shoppers variant drops PageValues from the numbers."""
    if name != WITHOUT_PAGE_VALUES:
        return load_config(Path(f"configs/datasets/{name}.yaml"), DatasetConfig)
    config = load_config(Path("configs/datasets/online_shoppers.yaml"), DatasetConfig)
    numeric = [c for c in config.attributes.numeric if c != "PageValues"]
    return config.model_copy(update={"attributes": config.attributes.model_copy(
        update={"numeric": numeric})})


def data_dir() -> Path:
    """Where the public datasets are: PREDICTIVE_SCORING_DATA_DIR, else base.yaml's
    ``data_dir`` (../shared/data)."""
    return load_config(BASE, BaseConfig).resolved_data_dir()


def _model_words() -> str:
    """The default LightGBM config in words, as the report states it."""
    params = model_config("lightgbm").params
    return (f"learning rate {params['learning_rate']}, {params['num_leaves']} leaves, early "
            f"stopping after {params['early_stopping_rounds']} rounds without improvement")


def model_config(kind: str) -> ModelConfig:
    return load_config(Path(f"configs/models/{kind}.yaml"), ModelConfig)


def rules_of(config: DatasetConfig) -> RulesConfig:
    return load_config(Path(config.rules), RulesConfig)


def reset_peak_rss() -> bool:
    """Reset this process's peak resident memory (Linux ``clear_refs``); False if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def last_json(output: str) -> dict[str, Any]:
    return json.loads(output.strip().splitlines()[-1])


def child(**spec: Any) -> dict[str, Any]:
    """Run one measurement in a fresh process."""
    return last_json(run_child("benchmarks.bench_train", "--child", json.dumps(spec)))


# ------------------------------------------------------------------ child cases
def simulate(folder: str, leads: int, seed: int = SEED,
             ages: list[int] | None = None) -> dict[str, Any]:
    """Simulate ``leads`` leads with the config's snapshot settings (or ``ages``) and
    write Parquet."""
    snapshots = load_config(SIMULATED, DatasetConfig).snapshots
    start = time.perf_counter()
    funnel = simulate_funnel(leads, seed, ages or snapshots.days_after_creation,
                             snapshots.horizon_days)
    simulated = time.perf_counter()
    write_funnel(funnel, Path(folder), "parquet")
    return {"leads": leads, "seed": seed, "events": len(funnel.events),
            "simulate_s": simulated - start,
            "write_s": time.perf_counter() - simulated, "peak_gib": peak_rss_gib()}


def quality(folder: str, kind: str) -> dict[str, Any]:
    """``run_training`` on the simulated Parquet files; model, oracle and rules metrics."""
    config = simulated_config(Path(folder))
    dataset = load_dataset(config, Path("."))
    start = time.perf_counter()
    run = run_training(dataset, training.TrainingPlan(
        config, model_config(kind), rules_of(config), load_config(BASE, BaseConfig)))
    seconds = time.perf_counter() - start
    metrics = run.metrics
    classifier = run.trained.scorer.pipeline[-1]
    return {"kind": kind, "seconds": seconds, "n_train": metrics["n_train"],
            "n_test": metrics["n_test"], "positive_rate": metrics["positive_rate_test"],
            "features": len(run.examples.columns.all), "calibration": metrics["calibration"],
            "rounds": getattr(classifier, "best_iteration_", None),
            "capacity": metrics["capacity"], "load_avg": os.getloadavg()[0],
            "by_age": _with_oracle_by_age(run),
            **{block: metrics[block] for block in ("model", "oracle", "rules")}}


def _with_oracle_by_age(run: training.TrainingRun) -> list[dict[str, Any]]:
    """metrics.json's by_age with the oracle's ROC-AUC and ECE on the same rows."""
    from predictive_scoring import evaluate

    examples, test = run.examples, run.trained.rows["test"]
    ages = training.lead_age_days(examples.frame)[test]
    oracle = evaluate.by_age(examples.label[test], examples.truth[test],
                             examples.rule_points[test], ages,
                             load_config(BASE, BaseConfig).training.ece_bins)
    return [{**entry, "oracle_roc_auc": truth["model_roc_auc"], "oracle_ece": truth["ece"]}
            for entry, truth in zip(run.metrics["by_age"], oracle, strict=True)]


def real(name: str) -> dict[str, Any]:
    """``run_training`` with LightGBM on a public dataset."""
    config = real_config(name)
    dataset = load_dataset(config, data_dir())
    start = time.perf_counter()
    run = run_training(dataset, training.TrainingPlan(
        config, model_config("lightgbm"), rules_of(config), load_config(BASE, BaseConfig)))
    metrics = run.metrics
    return {"name": name, "seconds": time.perf_counter() - start,
            "rows": len(run.examples.frame), "n_test": metrics["n_test"],
            "positive_rate": metrics["positive_rate_test"],
            "volume": metrics["handoff_volume_test"], "features": len(run.examples.columns.all),
            "split": "time-ordered" if run.examples.order is not None else "stratified",
            "calibration": metrics["calibration"], "warnings": metrics["warnings"],
            "model": metrics["model"], "rules": metrics["rules"]}


def speed(folder: str, variant: str) -> dict[str, Any]:
    """Load, build examples (untimed for the target), then time ``train_model`` alone."""
    config = simulated_config(Path(folder), variant, SPEED_AGES)
    base, model = load_config(BASE, BaseConfig), model_config("lightgbm")
    rules = rules_of(config)
    start = time.perf_counter()
    dataset = load_dataset(config, Path("."))
    loaded = time.perf_counter()
    peak_load = peak_rss_gib()
    examples, rows, _ = training.build_examples(dataset, config, rules, base.training)
    built = time.perf_counter()
    del dataset
    peak_before = peak_rss_gib()
    reset = reset_peak_rss()
    # Where the training step's time goes: wrap the steps train_model calls by name.
    steps: dict[str, float] = {}
    for name in ("model_frame", "fit_pipeline", "choose_calibrator", "comparison_metrics"):
        setattr(training, name, timed(name, steps, getattr(training, name)))
    load_avg, cpu = os.getloadavg()[0], _cpu_seconds()
    trained_at = time.perf_counter()
    trained = training.train_model(examples, rows,
                                   training.TrainingPlan(config, model, rules, base))
    seconds = time.perf_counter() - trained_at
    cpu = _cpu_seconds() - cpu
    classifier = trained.scorer.pipeline[-1]
    return {"variant": variant, "snapshots": len(examples.frame),
            "n_train": len(rows["train"]), "n_valid": len(rows["valid"]),
            "features": len(examples.columns.all), "load_s": loaded - start,
            "examples_s": built - loaded, "train_s": seconds, "steps": steps,
            "best_round": classifier.best_iteration_, "cpu_per_s": cpu / seconds,
            "load_avg": load_avg, "peak_load_gib": peak_load,
            "roc_auc": trained.metrics["model"]["roc_auc"],
            "peak_before_train_gib": peak_before,
            "peak_train_gib": peak_rss_gib() if reset else None,
            "peak_gib": max(peak_before, peak_rss_gib())}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    case = spec.pop("case")
    return {"simulate": simulate, "quality": quality, "real": real,
            "speed": speed}[case](**spec)


# ------------------------------------------------------------------ parent
def measure_quality(leads: int, seeds: list[int]) -> dict[str, Any]:
    """Per seed: simulate, then train each kind on the same files (one process each)."""
    results = {}
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix="bench_train_") as folder:
            sim = child(case="simulate", folder=folder, leads=leads, seed=seed)
            print(sim, flush=True)
            runs = {}
            for kind in ("lightgbm", "logreg"):
                runs[kind] = child(case="quality", folder=folder, kind=kind)
                _print_quality(runs[kind])
        results[seed] = {"simulation": sim, "runs": runs}
    return {"leads": leads, "seeds": results}


def _print_quality(run: dict[str, Any]) -> None:
    print({k: run[k] for k in ("kind", "seconds", "n_test", "rounds", "load_avg")},
          {b: {m: round(run[b][m], 4) for m in ("roc_auc", "log_loss", "ece")}
           for b in ("model", "oracle", "rules")}, flush=True)
    for band in run["by_age"]:
        print("   ", band, flush=True)


def measure_real(names: list[str]) -> list[dict[str, Any]]:
    results = []
    for name in names:
        try:
            results.append(child(case="real", name=name))
        except Exception as exc:  # a missing dataset must not stop the other cases
            results.append({"name": name, "error": str(getattr(exc, "stderr", exc))[-300:]})
        print({k: v for k, v in results[-1].items() if k not in ("model", "rules")},
              flush=True)
    return results


def measure_speed(leads: int, variants: list[str]) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_train_") as folder:
        sim = child(case="simulate", folder=folder, leads=leads, ages=SPEED_AGES)
        print(sim, flush=True)
        for variant in variants:
            runs: list[dict[str, Any]] = []
            clean: list[dict[str, Any]] = []
            wanted = 1
            while len(clean) < wanted and len(runs) < MAX_ATTEMPTS:
                runs.append(child(case="speed", folder=folder, variant=variant))
                print(runs[-1], flush=True)
                clean = [r for r in runs if r["cpu_per_s"] >= UNCONTENDED]
                if clean and variant == "reduced" and _borderline(clean[0]):
                    wanted = 3
            counted = clean or runs
            median = statistics.median(r["train_s"] for r in counted)
            chosen = min(counted, key=lambda r: abs(r["train_s"] - median))
            rows.append({**chosen, "train_s": median, "counted": len(counted),
                         "attempts": [(r["train_s"], r["cpu_per_s"]) for r in runs]})
    return {"simulation": sim, "rows": rows}


def _borderline(run: dict[str, Any]) -> bool:
    peak = run["peak_train_gib"] if run["peak_train_gib"] is not None else run["peak_gib"]
    return (abs(run["train_s"] / SPEED_TARGET_S - 1) < BORDERLINE
            or abs(peak / GIB_LIMIT - 1) < BORDERLINE)


# ------------------------------------------------------------------ report
def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def quality_lines(result: dict[str, Any]) -> list[str]:
    seeds = result["seeds"]
    ages = load_config(SIMULATED, DatasetConfig).snapshots
    lines = [f"### Quality on simulated data ({result['leads']:,} leads, seeds "
             f"{', '.join(map(str, seeds))})", "",
             f"The shipped simulated config: snapshots at lead ages {ages.days_after_creation} "
             f"days, horizon {ages.horizon_days} days, each lead's snapshots weighted by the "
             "ages the data can label; Parquet in a temporary folder; `run_training`, "
             "time-ordered split 60/20/20 by lead, every metric on the same test snapshots "
             "(model, the oracle's exact probabilities, the points).", "",
             "| seed | model | test snapshots | positive rate | features | rounds "
             "| calibration | train (s) | scorer | ROC-AUC | log loss | ECE | PR-AUC |",
             "|---:|---|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---:|"]
    for seed, entry in seeds.items():
        for kind, run in entry["runs"].items():
            for block in ("model", "oracle", "rules"):
                m = run[block]
                lines.append(
                    f"| {seed} | {kind} | {run['n_test']:,} | {run['positive_rate']:.2%} "
                    f"| {run['features']} | {run['rounds'] or '-'} | {run['calibration']} "
                    f"| {run['seconds']:.1f} | {block} | {m['roc_auc']:.4f} "
                    f"| {m['log_loss']:.4f} | {m['ece']:.4f} | {m['pr_auc']:.4f} |")
    header = " | ".join(f"seed {seed}: {kind}" for seed in seeds
                        for kind in ("lightgbm", "logreg"))
    lines += ["", f"| check (targets: LightGBM; logreg for reference) | {header} |",
              "|---|" + "---|" * (2 * len(seeds))]
    checked = [_checked(seeds[seed]["runs"][kind]) for seed in seeds
               for kind in ("lightgbm", "logreg")]
    for i, (label, *_) in enumerate(checked[0]):
        cells = " | ".join(f"{verdict(c[i][1])} ({c[i][2]})" for c in checked)
        lines.append(f"| {label} | {cells} |")
    for seed, entry in seeds.items():
        run = entry["runs"]["lightgbm"]
        lines += ["", f"Per lead-age band, LightGBM, seed {seed} (metrics.json `by_age`, "
                  "with the oracle on the same rows; the ECE target holds in bands with "
                  f">= {BAND_MIN_POSITIVES} converters):", "",
                  "| band (days) | test snapshots | converters | model ROC-AUC | oracle ROC-AUC "
                  "| rules ROC-AUC | model ECE | oracle ECE | ECE < 0.02 |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for band in run["by_age"]:
            counted = band["positives"] >= BAND_MIN_POSITIVES
            check = (verdict(band["ece"] < BAND_ECE_LIMIT) if counted
                     else f"not counted (< {BAND_MIN_POSITIVES} converters)")
            lines.append(f"| {band['band']} | {band['n']:,} | {band['positives']:,} "
                         f"| {_number(band['model_roc_auc'])} "
                         f"| {_number(band['oracle_roc_auc'])} "
                         f"| {_number(band['rules_roc_auc'])} | {_number(band['ece'])} "
                         f"| {_number(band['oracle_ece'])} | {check} |")
    capacity = seeds[next(iter(seeds))]["runs"]["lightgbm"]["capacity"]
    lines += ["", "LightGBM's capacity as fitted to the training slice (the rule in "
              "`models/kinds/lightgbm.py`): " + ", ".join(f"{k} {v:g}" for k, v in
                                                         capacity.items())
              + ". Train (s) is `run_training` as a whole (examples, leakage check, fit, "
              "calibration, stage thresholds on the open leads, evaluation); one run per "
              "kind and seed (LightGBM is deterministic with fixed seeds and data). "
              "1-minute load average at the start of each training (2 cores, shared with "
              "other jobs, so the seconds vary with it): " + "; ".join(
                  f"seed {seed} {kind} {run['load_avg']:.1f}" for seed, entry in seeds.items()
                  for kind, run in entry["runs"].items()) + "."]
    return lines


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _checked(r: dict[str, Any]) -> list[tuple[str, bool, str, float, float]]:
    """Each quality check: label, passed, text, value and limit."""
    gap = r["oracle"]["roc_auc"] - r["model"]["roc_auc"]
    ratio = r["model"]["log_loss"] / r["oracle"]["log_loss"] - 1
    counted = [b for b in r["by_age"] if b["positives"] >= BAND_MIN_POSITIVES]
    worst = max(counted, key=lambda b: b["ece"]) if counted else None
    gain = r["model"]["roc_auc"] - r["rules"]["roc_auc"]
    return [(f"ROC-AUC within {GAP_LIMIT} of the oracle's", gap <= GAP_LIMIT,
             f"oracle - model = {gap:+.4f}", gap, GAP_LIMIT),
            (f"log loss within {LOG_LOSS_LIMIT:.0%} of the oracle's", ratio <= LOG_LOSS_LIMIT,
             f"{ratio:+.2%}", ratio, LOG_LOSS_LIMIT),
            (f"ECE < {BAND_ECE_LIMIT} in every band with >= {BAND_MIN_POSITIVES} converters",
             worst is None or worst["ece"] < BAND_ECE_LIMIT,
             "no band counted" if worst is None else
             f"worst {worst['band']}: {worst['ece']:.4f}", 0.0, BAND_ECE_LIMIT),
            ("ROC-AUC >= rules + 0.05", gain >= 0.05, f"model - rules = {gain:+.4f}", gain,
             0.05)]


def real_lines(results: list[dict[str, Any]]) -> list[str]:
    lines = ["### Public datasets (same split and training code, LightGBM)", "",
             f"Data from `{data_dir()}`. Captured: share of the test positives among the "
             "top-scored leads, at the hand-off volume of the rules' MQL+ stages on the "
             "same test rows.", "",
             "| dataset | rows | split | features | test rows (pos. rate) | hand-off volume "
             "| model ROC-AUC | rules ROC-AUC | model PR-AUC | rules PR-AUC | model captured "
             "| rules captured | target |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    notes = []
    for r in results:
        if "error" in r:
            lines.append(f"| {r['name']} | not run: {r['error'].splitlines()[-1]} "
                         "| | | | | | | | | | | |")
            continue
        target = REAL.get(r["name"])
        check = (f"{verdict(r['model']['roc_auc'] >= target)} (>= {target})" if target
                 else "report only")
        m, b = r["model"], r["rules"]
        lines.append(f"| {r['name']} | {r['rows']:,} | {r['split']} | {r['features']} "
                     f"| {r['n_test']:,} ({r['positive_rate']:.1%}) | {r['volume']:,} "
                     f"| {m['roc_auc']:.4f} | {b['roc_auc']:.4f} | {m['pr_auc']:.4f} "
                     f"| {b['pr_auc']:.4f} | {m['captured_at_rules_volume']:.1%} "
                     f"| {b['captured_at_rules_volume']:.1%} | {check} |")
        notes += [f"- {r['name']}: {w}" for w in r["warnings"]]
    lines += ["", "bank_marketing leaves out `duration` (its config's `drop_columns`). "
              "The shoppers run without `PageValues` drops it from `attributes.numeric` "
              "(SOURCE.md: it is tied to the outcome); its target applies to the shipped "
              "config only."]
    if notes:
        lines += ["", "Leakage warnings (`--strict` would stop these runs):", *notes]
    return lines


def speed_lines(result: dict[str, Any]) -> list[str]:
    sim = result["simulation"]
    lines = [f"### Training speed ({sim['leads']:,} simulated leads)", "",
             f"Simulating {sim['leads']:,} leads ({sim['events']:,} events) took "
             f"{sim['simulate_s']:.0f} s plus {sim['write_s']:.0f} s to write Parquet "
             f"(peak {sim['peak_gib']:.2f} GiB, its own process). Each row below is a fresh "
             "process: load and validate the Parquet files, build the examples (snapshots, "
             "split, vocabulary, behaviour features, rule points), then `train_model` (model "
             "frame, fit with early stopping on the validation slice, calibration choice, "
             "stage thresholds, test evaluation against the rules and the oracle).", "",
             "| feature set | snapshots (train / valid) | features | load (s) "
             "| build examples (s) | **train_model (s)** | CPU use | best round "
             "| peak: load / examples (GiB) | **peak while training (GiB)** "
             "| target < 120 s, < 8 GB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        name = ("full (default config)" if r["variant"] == "full" else
                f"reduced (`detail_event_types: {REDUCED_DETAIL_TYPES}`)")
        repeats = (f" (median of {r['counted']})" if r["counted"] > 1 else "")
        peak_train = r["peak_train_gib"] if r["peak_train_gib"] is not None else r["peak_gib"]
        ok = r["train_s"] < SPEED_TARGET_S and peak_train < GIB_LIMIT
        lines.append(f"| {name} | {r['snapshots']:,} ({r['n_train']:,} / {r['n_valid']:,}) "
                     f"| {r['features']} | {r['load_s']:.0f} | {r['examples_s']:.0f} "
                     f"| **{r['train_s']:.1f}**{repeats} | {r['cpu_per_s']:.2f} "
                     f"| {r['best_round']} | {r['peak_load_gib']:.2f} / "
                     f"{r['peak_before_train_gib']:.2f} | **{peak_train:.2f}** "
                     f"| {verdict(ok)}{'' if r['variant'] == 'reduced' else ' (reference)'} |")
    lines += ["", "Where `train_model`'s time goes (seconds):", "",
              "| feature set | model frame | fit + early stopping | calibration choice "
              "| evaluation | rest (predictions for calibration and thresholds, test "
              "scoring) |", "|---|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        s = r["steps"]
        rest = r["train_s"] - sum(s.values())
        lines.append(f"| {r['variant']} | {s.get('model_frame', 0):.1f} "
                     f"| {s.get('fit_pipeline', 0):.1f} | {s.get('choose_calibrator', 0):.1f} "
                     f"| {s.get('comparison_metrics', 0):.1f} | {rest:.1f} |")
    lines += ["", "The target is for ~80 features (the reduced row); the full feature set is "
              "reported for reference. Anchor: LightGBM alone trains 1M x 40 for 300 rounds in "
              f"~23 s on this machine; the default model ({_model_words()}) trains best round "
              "+ its early-stopping rounds. "
              "CPU use: process CPU seconds per wall second during `train_model` (2.0 = both "
              "cores; lower means other processes took a core). Peak memory is `ru_maxrss`: "
              "after loading, after building the examples (load and examples are not part of "
              "the target), and while training: the peak after resetting it (`clear_refs`) "
              "just before `train_model`, so it includes the examples held in memory. 8 GB = "
              "7.45 GiB.", "",
              "Other processes share this machine, and LightGBM's two threads slow down 2-4x "
              "when one loses its core, so a run counts only with CPU use >= "
              f"{UNCONTENDED}; the ~80-feature row, when within 25% of a target, is the "
              "median of three counted runs (each a fresh process). Every run, train_model "
              "seconds (CPU use): " + "; ".join(
                  f"{r['variant']}: " + ", ".join(f"{t:.0f} s ({c:.2f})"
                                                  for t, c in r["attempts"])
                  for r in result["rows"]) + "."]
    return lines


SUBSECTIONS = {"quality": "### Quality", "real": "### Public datasets",
               "speed": "### Training speed"}


def write_results(sections: dict[str, Any]) -> None:
    """Rewrite the measured subsections; those not measured this time stay as they were
    (with the date they were measured, which the section's header line no longer gives:
    it is added to each kept subsection once)."""
    kept = _current_subsections()
    header = ["## Training (`python -m benchmarks.bench_train`)", "", machine_info(), ""]
    body: list[str] = []
    writers = {"quality": quality_lines, "real": real_lines, "speed": speed_lines}
    for case in SUBSECTIONS:
        if case in sections:
            body += [*writers[case](sections[case]), ""]
        elif case in kept:
            body += [kept[case].rstrip(), ""]
    update_section("bench_train", "\n".join(header + body))
    print("\n".join(header + body))


def _current_subsections() -> dict[str, str]:
    """The ``###`` subsections now in RESULTS.md's training section, by case."""
    from benchmarks._results import RESULTS

    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    start, end = "<!-- bench_train:start -->", "<!-- bench_train:end -->"
    if start not in text or end not in text:
        return {}
    section = text.split(start, 1)[1].split(end, 1)[0]
    dated = re.search(r"measured (\d{4}-\d\d-\d\d \d\d:\d\d UTC)", section)
    found = {}
    for part in section.split("\n### ")[1:]:
        part = "### " + part
        for case, heading in SUBSECTIONS.items():
            if part.startswith(heading):
                if dated and "(measured " not in part.splitlines()[0]:
                    first, _, rest = part.partition("\n")
                    part = f"{first} (measured {dated.group(1)})\n{rest}"
                found[case] = part
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=["quality", "real", "speed"],
                        default=["quality", "real", "speed"])
    parser.add_argument("--quality-leads", type=int, default=100_000)
    parser.add_argument("--quality-seeds", type=int, nargs="+", default=list(QUALITY_SEEDS))
    parser.add_argument("--real", nargs="+", default=[*REAL, WITHOUT_PAGE_VALUES],
                        help="public dataset configs to train on")
    parser.add_argument("--speed-leads", type=int, default=500_000,
                        help="simulated leads for the speed case (~2 snapshots each)")
    parser.add_argument("--speed-variants", nargs="+", choices=["full", "reduced"],
                        default=["full", "reduced"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(json.loads(args.child)), default=float))
        return
    sections: dict[str, Any] = {}
    if "quality" in args.cases:
        sections["quality"] = measure_quality(args.quality_leads, args.quality_seeds)
    if "real" in args.cases:
        sections["real"] = measure_real(args.real)
    if "speed" in args.cases:
        sections["speed"] = measure_speed(args.speed_leads, args.speed_variants)
    write_results(sections)


if __name__ == "__main__":
    main()
