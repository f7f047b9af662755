"""Training speed: ``train_model`` on about a million snapshots, its overhead measured
against the LightGBM fit inside it, its peak memory, and its test ROC-AUC against the
way that predicts every slice after the fit.

Usage: ``python -m benchmarks.bench_train_speed [--leads 500000] [--variants full
reduced]``. Simulated data goes to Parquet in a temporary folder; every measurement runs
in a fresh process, so each peak memory is that run's own.

Targets (issue 21):
- overhead (``train_model`` minus the LightGBM fit it runs, as a share of that fit)
  <= 15%;
- the full feature set on ~1M snapshots trained in under 120 s, peak under 8 GB;
- the same test ROC-AUC (within 0.001) as predicting every slice after the fit.
"""

from __future__ import annotations

import argparse
import json
import os
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

SEED = 7
REDUCED_DETAIL_TYPES = ["demo_request"]
"""The ~80-feature variant: per-detail keys only for a type that has no details."""
SPEED_AGES = [7, 30]
"""Two snapshot ages (about 2 snapshots per lead, as the target's 1M snapshots from 500k
leads assume); the quality benchmark uses the shipped config's spread of ages."""
TARGET_S, TARGET_GB, TARGET_OVERHEAD, TARGET_AUC = 120.0, 8.0, 0.15, 0.001
GIB_LIMIT = TARGET_GB * 1e9 / 2**30
UNCONTENDED, MAX_ATTEMPTS = 1.75, 2
"""A run counts when it got at least 1.75 CPU seconds per wall second (LightGBM's two
threads on 2 cores): LightGBM slows down 2-10x when another process takes one core."""


def _configs(folder: str, variant: str) -> tuple[Any, Any, Any, Any]:
    from predictive_scoring.config import (
        BaseConfig,
        DatasetConfig,
        ModelConfig,
        RulesConfig,
        load_config,
    )
    from predictive_scoring.data.synthetic import PARQUET_FILES

    config = load_config(SIMULATED_CONFIG, DatasetConfig).pointed_at(Path(folder),
                                                                       PARQUET_FILES)
    config = config.model_copy(update={"snapshots": config.snapshots.model_copy(
        update={"days_after_creation": SPEED_AGES})})
    if variant == "reduced":
        config = config.model_copy(update={"features": config.features.model_copy(
            update={"detail_event_types": REDUCED_DETAIL_TYPES})})
    return (config, load_config(BASE_CONFIG, BaseConfig),
            load_config(Path("configs/models/lightgbm.yaml"), ModelConfig),
            load_config(Path(config.rules), RulesConfig))


def reset_peak_rss() -> bool:
    """Reset this process's peak resident memory (Linux ``clear_refs``); False if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------ child cases
def simulate(folder: str, leads: int) -> dict[str, Any]:
    """Simulate ``leads`` leads with the default snapshot settings and write Parquet."""
    from predictive_scoring.data.synthetic import simulate_funnel, write_funnel

    snapshots = _configs(folder, "full")[0].snapshots
    start = time.perf_counter()
    funnel = simulate_funnel(leads, SEED, snapshots.days_after_creation,
                             snapshots.horizon_days)
    write_funnel(funnel, Path(folder), "parquet")
    return {"leads": leads, "events": len(funnel.events),
            "seconds": time.perf_counter() - start}


def speed(folder: str, variant: str) -> dict[str, Any]:
    """Load and build the examples (untimed), then time ``train_model`` with its steps."""
    import lightgbm as lgb
    import numpy as np

    from predictive_scoring import train as training
    from predictive_scoring.data.dataset import load_dataset
    from predictive_scoring.explain import sample_rows
    from predictive_scoring.models.columns import model_frame
    from predictive_scoring.models.kinds import lightgbm as lightgbm_kind

    config, base, model, rules = _configs(folder, variant)
    dataset = load_dataset(config, Path("."))
    examples, rows, _ = training.build_examples(dataset, config, rules, base.training)
    del dataset
    peak_before = peak_rss_gib()
    reset = reset_peak_rss()
    steps: dict[str, float] = {}
    for name in ("model_frame", "fit_scored", "finish_training"):
        setattr(training, name, timed(name, steps, getattr(training, name)))
    lgb.LGBMClassifier.fit = timed("lightgbm_fit", steps, lgb.LGBMClassifier.fit)
    # Scoring the test rows and the population as the fit ends runs inside
    # LGBMClassifier.fit; it is overhead, not the floor.
    lightgbm_kind.score_rows_at_best_round = timed(
        "scored_at_best_round", steps, lightgbm_kind.score_rows_at_best_round)
    reused: dict[str, Any] = {}
    fit_scored = training.fit_scored

    def keep_scores(*args: Any) -> Any:
        reused["fitted"] = fit_scored(*args)
        return reused["fitted"]

    training.fit_scored = keep_scores
    plan = training.TrainingPlan(config, model, rules, base)
    load_avg, cpu = os.getloadavg()[0], _cpu_seconds()
    start = time.perf_counter()
    trained = training.train_model(examples, rows, plan)
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu
    peak_train = peak_rss_gib() if reset else None
    steps = dict(steps)  # the calls below are not part of the run
    # Untimed: the way before, every slice predicted by the fitted pipeline.
    pipeline, raw_train, raw_valid, raw_test, *_ = reused["fitted"]
    whole = model_frame(examples.frame, examples.columns)
    raw = {name: pipeline.predict_proba(whole.iloc[r])[:, 1] for name, r in rows.items()}
    # What the scoring at the best round replaces: the test rows' and the population's
    # model input predicted after the fit (timed here, outside the run).
    inputs = [model_frame(examples.frame, examples.columns, rows["test"]),
              model_frame(examples.population.frame, examples.columns)]
    start = time.perf_counter()
    for x in inputs:
        pipeline.predict_proba(x)
    predicted_instead = time.perf_counter() - start
    del inputs
    sample = whole.iloc[rows["train"]].iloc[sample_rows(len(rows["train"]),
                                                        training.EXPLANATION_ROWS,
                                                        base.training.seed)]
    del whole
    before = training.finish_training(examples, rows, pipeline, raw, plan, sample)
    return {"variant": variant, "snapshots": len(examples.frame),
            "n_train": len(rows["train"]), "n_valid": len(rows["valid"]),
            "n_test": len(rows["test"]), "features": len(examples.columns.all),
            "train_s": seconds, "steps": steps, "cpu_per_s": cpu / seconds,
            "best_round": pipeline[-1].best_iteration_, "load_avg": load_avg,
            "predicted_instead_s": predicted_instead,
            "load_avg_end": os.getloadavg()[0],
            "peak_before_train_gib": peak_before, "peak_train_gib": peak_train,
            "roc_auc": trained.metrics["model"]["roc_auc"],
            "roc_auc_every_slice": before.metrics["model"]["roc_auc"],
            "max_score_difference": float(max(np.abs(raw_train - raw["train"]).max(),
                                              np.abs(raw_valid - raw["valid"]).max(),
                                              np.abs(raw_test - raw["test"]).max())),
            "same_thresholds": bool(np.allclose(
                list(trained.scorer.stage_thresholds.values()),
                list(before.scorer.stage_thresholds.values()), rtol=0, atol=1e-9))}


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    case = spec.pop("case")
    return {"simulate": simulate, "speed": speed}[case](**spec)


def child(**spec: Any) -> dict[str, Any]:
    """Run one measurement in a fresh process."""
    output = run_child("benchmarks.bench_train_speed", "--child", json.dumps(spec))
    return json.loads(output.strip().splitlines()[-1])


# ------------------------------------------------------------------ parent
def measure(leads: int, variants: list[str]) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_train_speed_") as folder:
        sim = child(case="simulate", folder=folder, leads=leads)
        print(sim, flush=True)
        for variant in variants:
            runs: list[dict[str, Any]] = []
            while len(runs) < MAX_ATTEMPTS and not any(
                    r["cpu_per_s"] >= UNCONTENDED for r in runs):
                runs.append(child(case="speed", folder=folder, variant=variant))
                print({k: v for k, v in runs[-1].items()}, flush=True)
            counted = [r for r in runs if r["cpu_per_s"] >= UNCONTENDED] or runs
            median = statistics.median(r["train_s"] for r in counted)
            chosen = min(counted, key=lambda r: abs(r["train_s"] - median))
            rows.append({**chosen, "counted": len(counted),
                         "attempts": [(r["train_s"], r["cpu_per_s"]) for r in runs]})
    return {"simulation": sim, "rows": rows}


# ------------------------------------------------------------------ report
def floor_of(steps: dict[str, float]) -> float:
    """The LightGBM fit without the scoring of the test rows and the population that runs
    in its last callback (:func:`score_rows_at_best_round`), which counts as overhead."""
    return steps["lightgbm_fit"] - steps.get("scored_at_best_round", 0.0)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def lines_of(result: dict[str, Any]) -> list[str]:
    sim = result["simulation"]
    lines = ["## Training speed (`python -m benchmarks.bench_train_speed`)", "",
             machine_info(), "",
             f"{sim['leads']:,} simulated leads (seed {SEED}, {sim['events']:,} events, "
             "Parquet). Each row is a fresh process: load and validate, build the examples "
             "(untimed), then `train_model`: each slice's model input, the fit (early "
             "stopping on the validation slice; the fit hands back LightGBM's own scores of "
             "the training and validation rows at the best round, and scores the test rows "
             "and the open-lead population on their binned values as it ends), "
             "calibration choice, stage thresholds, explanation cut points and the test "
             "evaluation against the rules and the oracle.", "",
             "| feature set | snapshots (train / valid / test) | features | best round "
             "| LightGBM fit (s, the floor) | **train_model (s)** | **overhead / fit** "
             "| CPU use | peak while training (GiB) | test ROC-AUC | every slice predicted "
             "| targets: overhead <= 15%, < 120 s, < 8 GB, ROC-AUC within 0.001 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        fit = floor_of(r["steps"])
        overhead = (r["train_s"] - fit) / fit
        peak = r["peak_train_gib"] if r["peak_train_gib"] is not None else float("nan")
        gap = abs(r["roc_auc"] - r["roc_auc_every_slice"])
        checks = [overhead <= TARGET_OVERHEAD, r["train_s"] < TARGET_S, peak < GIB_LIMIT,
                  gap <= TARGET_AUC]
        name = ("full (default config)" if r["variant"] == "full" else
                f"reduced (`detail_event_types: {REDUCED_DETAIL_TYPES}`)")
        lines.append(
            f"| {name} | {r['snapshots']:,} ({r['n_train']:,} / {r['n_valid']:,} / "
            f"{r['n_test']:,}) | {r['features']} | {r['best_round']} | {fit:.1f} "
            f"| **{r['train_s']:.1f}** | **{overhead:.1%}** | {r['cpu_per_s']:.2f} "
            f"| {peak:.2f} | {r['roc_auc']:.4f} | {r['roc_auc_every_slice']:.4f} "
            f"| {' / '.join(verdict(c) for c in checks)} |")
    lines += ["", "Where `train_model`'s time goes (seconds):", "",
              "| feature set | model input (3 slices and the population) "
              "| encoding the slices (prep) | LightGBM fit (the floor) "
              "| test rows and population scored as the fit ends | the rest "
              "| calibration, thresholds, explanation cut points, evaluation |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        s = r["steps"]
        rest = r["train_s"] - s["model_frame"] - s["fit_scored"] - s["finish_training"]
        lines.append(f"| {r['variant']} | {s['model_frame']:.1f} "
                     f"| {s['fit_scored'] - s['lightgbm_fit']:.1f} | {floor_of(s):.1f} "
                     f"| {s.get('scored_at_best_round', 0.0):.1f} | {rest:.1f} "
                     f"| {s['finish_training']:.1f} |")
    lines += ["", "The floor is the LightGBM fit (`LGBMClassifier.fit`: its data set, "
              "boosting and early stopping) timed inside the same `train_model` call, less "
              "the scoring of the test rows and the population in its last callback "
              "(`score_rows_at_best_round`, timed on its own); overhead is everything else "
              "`train_model` does, that scoring included. Predicting those rows after "
              "the fit instead (their model input encoded and predicted by the pipeline, "
              "timed in the same process after the run; the scoring above excludes their "
              "encoding, counted under prep) took "
              + ", ".join(f"{r['predicted_instead_s']:.1f} s" for r in result["rows"])
              + ". Before the scores were reused, the "
              "fitted pipeline predicted all three slices after the fit (1M rows through "
              "every tree) and built the model input twice: on this machine 42-47 s, 43-62% "
              "of the fit (cProfile of `train_model` on 200k snapshots: predictions 19% of "
              "the call, the fit 63%, explanation cut points 9%). Every slice predicted: "
              "the same trained pipeline, its calibration, thresholds and test metrics "
              "computed the way before (untimed, same process); the reused scores differ "
              "from a fresh prediction by at most "
              + ", ".join(f"{r['max_score_difference']:.1e}" for r in result["rows"])
              + " (rounding: LightGBM adds each tree to a running score), and the stage "
              "thresholds are "
              + ("the same" if all(r["same_thresholds"] for r in result["rows"])
                 else "NOT the same") + ".", "",
              "CPU use: process CPU seconds per wall second during `train_model` (2.0 = "
              f"both cores); a run counts with CPU use >= {UNCONTENDED} (up to "
              f"{MAX_ATTEMPTS} attempts). Peak: `ru_maxrss` reset (`clear_refs`) just "
              "before `train_model`, so it includes the examples held in memory; 8 GB = "
              "7.45 GiB. Machine load (1-minute average, start -> end of `train_model`; 2 "
              "cores shared with other work): " + "; ".join(
                  f"{r['variant']}: {r['load_avg']:.1f} -> {r['load_avg_end']:.1f}"
                  for r in result["rows"]) + ". Every run, train_model seconds (CPU use): "
              + "; ".join(f"{r['variant']}: " + ", ".join(
                  f"{t:.0f} s ({c:.2f})" for t, c in r["attempts"]) for r in result["rows"])
              + "."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=500_000,
                        help="simulated leads (~2 snapshots each)")
    parser.add_argument("--variants", nargs="+", choices=["full", "reduced"],
                        default=["full", "reduced"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(json.loads(args.child)), default=float))
        return
    lines = lines_of(measure(args.leads, args.variants))
    update_section("bench_train_speed", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
