"""Training: quality against the oracle and the rules on simulated data, and the same split
and training code on the public datasets (the speed and peak memory of ``train_model`` on
about a million snapshots: ``benchmarks/bench_train_speed.py``).

Usage: ``python -m benchmarks.bench_train [--cases quality real] [--quality-leads
100000]``. Simulated data goes to Parquet in a temporary folder; every measurement runs in
a fresh process, so each peak memory is that run's own.

Targets (issue 17):
- quality, 100k simulated leads, seeds 3 and 7, LightGBM, the shipped simulated config
  (snapshots spread over lead ages 1-365 days): ROC-AUC within 0.005 of the oracle's, log
  loss within 1% of the oracle's, ECE < 0.02 in every lead-age band with >= 50
  converters, ROC-AUC >= the rules' + 0.05;
- real data: bank marketing ROC-AUC >= 0.79, online shoppers >= 0.92.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
from predictive_scoring.stages import Stage
from predictive_scoring.workflow.training import run_training

SIMULATED = SIMULATED_CONFIG
BASE = BASE_CONFIG
SEED = 7
QUALITY_SEEDS = (3, 7)
GAP_LIMIT, LOG_LOSS_LIMIT, BAND_ECE_LIMIT, BAND_MIN_POSITIVES = 0.005, 0.01, 0.02, 50
REAL = {"bank_marketing": 0.79, "online_shoppers": 0.92, "olist_mqls": None}
DECISIONS_FIRST = "lightgbm, decisions first"
QUALITY_RUNS = {"lightgbm": ("lightgbm", False), DECISIONS_FIRST: ("lightgbm", True),
                "logreg": ("logreg", False)}
"""The quality runs on each seed's files: name -> (model kind, learn decisions first:
``snapshots.decision_after: opportunity``, off in the shipped config)."""
WITHOUT_PAGE_VALUES = "online_shoppers without PageValues"
REDUCED_DETAIL_TYPES = ["demo_request"]
"""The ~80-feature variant: per-detail keys only for a type that has no details, so the
behaviour features are the 13 event-type keys (12 types + ``__other__``) and no
``(type, detail)`` pairs."""


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


def model_config(kind: str) -> ModelConfig:
    return load_config(Path(f"configs/models/{kind}.yaml"), ModelConfig)


def rules_of(config: DatasetConfig) -> RulesConfig:
    return load_config(Path(config.rules), RulesConfig)


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
    kind, decisions = QUALITY_RUNS[kind]
    if decisions:
        config = config.model_copy(update={"snapshots": config.snapshots.model_copy(
            update={"decision_after": Stage.OPPORTUNITY})})
    dataset = load_dataset(config, Path("."))
    start = time.perf_counter()
    run = run_training(dataset, training.TrainingPlan(
        config, model_config(kind), rules_of(config), load_config(BASE, BaseConfig)))
    seconds = time.perf_counter() - start
    metrics = run.metrics
    classifier = run.trained.scorer.pipeline[-1]
    return {"kind": kind, "decisions": decisions, "seconds": seconds,
            "n_train": metrics["n_train"],
            "n_test": metrics["n_test"], "positive_rate": metrics["positive_rate_test"],
            "features": len(run.examples.columns.all), "calibration": metrics["calibration"],
            "rounds": getattr(classifier, "best_iteration_", None),
            "first_stage_rounds": metrics.get("decisions", {}).get("first_stage_rounds", 0),
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


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    case = spec.pop("case")
    return {"simulate": simulate, "quality": quality, "real": real}[case](**spec)


# ------------------------------------------------------------------ parent
def measure_quality(leads: int, seeds: list[int]) -> dict[str, Any]:
    """Per seed: simulate, then train each kind on the same files (one process each)."""
    results = {}
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix="bench_train_") as folder:
            sim = child(case="simulate", folder=folder, leads=leads, seed=seed)
            print(sim, flush=True)
            runs = {}
            for name in QUALITY_RUNS:
                runs[name] = child(case="quality", folder=folder, kind=name)
                _print_quality(runs[name])
        results[seed] = {"simulation": sim, "runs": runs}
    return {"leads": leads, "seeds": results}


def _print_quality(run: dict[str, Any]) -> None:
    print({k: run[k] for k in ("kind", "decisions", "seconds", "n_test", "rounds",
                               "first_stage_rounds", "load_avg")},
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
             "(model, the oracle's exact probabilities, the points). "
             f"*{DECISIONS_FIRST}*: the same config with `decision_after: opportunity` "
             "(LightGBM first learns which leads decide, won or lost after an opportunity, "
             "then the wins; its rounds read first stage + the target's).", "",
             "| seed | model | test snapshots | positive rate | features | rounds "
             "| calibration | train (s) | scorer | ROC-AUC | log loss | ECE | PR-AUC |",
             "|---:|---|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---:|"]
    for seed, entry in seeds.items():
        for name, run in entry["runs"].items():
            for block in ("model", "oracle", "rules"):
                m = run[block]
                lines.append(
                    f"| {seed} | {name} | {run['n_test']:,} | {run['positive_rate']:.2%} "
                    f"| {run['features']} | {_rounds(run)} | {run['calibration']} "
                    f"| {run['seconds']:.1f} | {block} | {m['roc_auc']:.4f} "
                    f"| {m['log_loss']:.4f} | {m['ece']:.4f} | {m['pr_auc']:.4f} |")
    header = " | ".join(f"seed {seed}: {name}" for seed in seeds for name in QUALITY_RUNS)
    lines += ["", f"| check (targets: LightGBM; the others for reference) | {header} |",
              "|---|" + "---|" * (len(QUALITY_RUNS) * len(seeds))]
    checked = [_checked(seeds[seed]["runs"][name]) for seed in seeds for name in QUALITY_RUNS]
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


def _rounds(run: dict[str, Any]) -> str:
    """Boosting rounds: the first stage's + the target's, or all of them, or '-'."""
    rounds, first = run["rounds"], run.get("first_stage_rounds", 0)
    if not rounds:
        return "-"
    return f"{first} + {rounds - first}" if first else str(rounds)


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


SUBSECTIONS = {"quality": "### Quality", "real": "### Public datasets"}


def write_results(sections: dict[str, Any]) -> None:
    """Rewrite the measured subsections; those not measured this time stay as they were
    (with the date they were measured, which the section's header line no longer gives:
    it is added to each kept subsection once)."""
    kept = _current_subsections()
    header = ["## Training (`python -m benchmarks.bench_train`)", "", machine_info(), ""]
    body: list[str] = []
    writers = {"quality": quality_lines, "real": real_lines}
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
    parser.add_argument("--cases", nargs="+", choices=["quality", "real"],
                        default=["quality", "real"])
    parser.add_argument("--quality-leads", type=int, default=100_000)
    parser.add_argument("--quality-seeds", type=int, nargs="+", default=list(QUALITY_SEEDS))
    parser.add_argument("--real", nargs="+", default=[*REAL, WITHOUT_PAGE_VALUES],
                        help="public dataset configs to train on")
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
    write_results(sections)


if __name__ == "__main__":
    main()
