"""How close the features can get to the oracle, against how close the 0/1 labels let a
model get: the quality target's gap (issue 17) split into what the features miss and what
the labels' sample cannot tell.

Usage: ``python -m benchmarks.bench_ceiling [--leads 100000] [--seeds 3 7]``. For each
seed: the shipped simulated config, its examples and time-ordered split (as
``bench_train``), then on the same training and validation rows and with the shipped
LightGBM settings (capacity rule included) two fits, each stopped early on the validation
slice:

- *0/1 labels*: the binary fit on the outcomes, as training does;
- *the oracle's probabilities as labels*: the same trees fitted by cross-entropy to the
  simulator's exact probability of each training row (only a simulation has them). What
  it misses of the oracle's ROC-AUC is what the features cannot express.

Both are scored on the same test rows against the oracle (ROC-AUC gap and log loss, the
latter after Platt scaling on the validation slice, as training calibrates).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._results import machine_info, publish, run_child

LEADS, SEEDS = 100_000, (3, 7)
GAP_LIMIT = 0.005


def prepared(folder: str, ages: list[int] | None = None,
             decisions: bool = False) -> dict[str, Any]:
    """One simulated folder's examples as the LightGBM fit sees them: the shipped config
    (with other snapshot ages when given, and ``decision_after: opportunity`` with
    ``decisions``), its time-ordered split, the model input of each slice (encoded as
    training encodes it), labels, the oracle's probabilities, weights, decisions, each
    test row's lead age in days, and the shipped parameters with the capacity rule
    applied to the training slice."""
    import lightgbm as lgb

    from benchmarks.bench_train import BASE, model_config, rules_of, simulated_config
    from predictive_scoring.config import BaseConfig, load_config
    from predictive_scoring.data.dataset import load_dataset
    from predictive_scoring.models.columns import model_frame
    from predictive_scoring.models.kinds.lightgbm import (
        EARLY_STOPPING_KEY,
        capacity_params,
        classifier_params,
    )
    from predictive_scoring.models.scorer import build_pipeline
    from predictive_scoring.stages import Stage
    from predictive_scoring.train import build_examples

    config, model = simulated_config(Path(folder), ages=ages), model_config("lightgbm")
    if decisions:
        config = config.model_copy(update={"snapshots": config.snapshots.model_copy(
            update={"decision_after": Stage.OPPORTUNITY})})
    examples, rows, _ = build_examples(load_dataset(config, Path(".")), config,
                                       rules_of(config),
                                       load_config(BASE, BaseConfig).training)
    prep = build_pipeline(model, examples.columns)[:-1]
    x = {name: model_frame(examples.frame, examples.columns, r) for name, r in rows.items()}
    x = {"train": prep.fit_transform(x["train"]), "valid": prep.transform(x["valid"]),
         "test": prep.transform(x["test"])}
    y = {name: examples.label[r] for name, r in rows.items()}
    test = examples.frame.iloc[rows["test"]]
    train_positives = int(y["train"].sum())
    return {"model": model, "x": x, "y": y,
            "truth": {name: examples.truth[r] for name, r in rows.items()},
            "weights": examples.weights(rows) or (None, None),
            "decided": examples.decisions(rows),
            "test_age": ((test["as_of"] - test["created_at"]).dt.days).to_numpy(),
            "params": classifier_params(model) | capacity_params(
                model.params, len(y["train"]), train_positives),
            "stop": [lgb.early_stopping(model.params[EARLY_STOPPING_KEY], verbose=False)],
            "categorical": list(range(len(examples.columns.categorical)))}


def platt_scored(data: dict[str, Any], raw: dict[str, np.ndarray],
                 test: np.ndarray | None = None) -> dict[str, float]:
    """Raw scores of the validation and test rows, Platt-scaled on the validation slice
    (as training calibrates), against the oracle on the test rows (those of ``test``, a
    mask, when given): the ROC-AUC gap and the log loss over the oracle's."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score

    y = data["y"]
    keep = np.ones(len(y["test"]), bool) if test is None else test
    label, truth = y["test"][keep], data["truth"]["test"][keep]
    platt = LogisticRegression(C=1e6).fit(raw["valid"].reshape(-1, 1), y["valid"])
    p = platt.predict_proba(raw["test"][keep].reshape(-1, 1))[:, 1]
    return {"gap": roc_auc_score(label, truth) - roc_auc_score(label, p),
            "log_loss_excess": log_loss(label, p) / log_loss(label, truth) - 1,
            "n_test": int(keep.sum())}


def fit_and_score(folder: str) -> dict[str, Any]:
    """Both fits on one seed's files; the gap and log loss of each on the test rows."""
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    data = prepared(folder)
    x, y, truth, params = data["x"], data["y"], data["truth"], data["params"]
    weights, stop, categorical = data["weights"], data["stop"], data["categorical"]
    oracle_auc = roc_auc_score(y["test"], truth["test"])

    def scored(estimator: Any, target: dict[str, np.ndarray]) -> dict[str, float]:
        start = time.perf_counter()
        estimator.fit(x["train"], target["train"], sample_weight=weights[0],
                      eval_set=[(x["valid"], target["valid"])],
                      eval_sample_weight=None if weights[1] is None else [weights[1]],
                      categorical_feature=categorical, callbacks=stop)
        raw = {name: estimator.predict(x[name], raw_score=True) for name in ("valid", "test")}
        return platt_scored(data, raw) | {"rounds": int(estimator.best_iteration_),
                                          "seconds": time.perf_counter() - start}

    labels = scored(lgb.LGBMClassifier(**params), y)
    soft = scored(lgb.LGBMRegressor(**params | {"objective": "cross_entropy"}), truth)
    return {"n_train": len(y["train"]), "n_test": len(y["test"]),
            "max_rounds": int(params["n_estimators"]),
            "train_positives": int(y["train"].sum()), "oracle_roc_auc": oracle_auc,
            "labels": labels, "oracle_labels": soft}


def child(**spec: Any) -> dict[str, Any]:
    output = run_child("benchmarks.bench_ceiling", "--child", json.dumps(spec))
    return json.loads(output.strip().splitlines()[-1])


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.bench_train import simulate

    if spec.pop("case") == "simulate":
        return simulate(**spec)
    return fit_and_score(**spec)


def lines_of(leads: int, results: dict[int, dict[str, Any]]) -> list[str]:
    lines = ["## Features against labels (`python -m benchmarks.bench_ceiling`)", "",
             machine_info(), "", f"{leads:,} simulated leads per seed, the shipped config and "
             "split, the shipped LightGBM settings; both fits on the same training rows, "
             "stopped early on the validation slice, scored on the same test rows.", "",
             "| seed | training rows (converters) | test rows | fitted to | rounds "
             "| oracle - model ROC-AUC | log loss over the oracle's |",
             "|---:|---:|---:|---|---:|---:|---:|"]
    for seed, r in results.items():
        for key, label in (("labels", "0/1 labels"),
                           ("oracle_labels", "the oracle's probabilities")):
            fit = r[key]
            lines.append(f"| {seed} | {r['n_train']:,} ({r['train_positives']:,}) "
                         f"| {r['n_test']:,} | {label} | {fit['rounds']} "
                         f"| {fit['gap']:+.4f} | {fit['log_loss_excess']:+.2%} |")
    lines += ["", "Fitted to the oracle's probabilities, the same features and trees come "
              f"within {max(r['oracle_labels']['gap'] for r in results.values()):.4f} "
              "ROC-AUC of the oracle on every seed: what the 0/1 fit misses beyond that "
              "is the labels' sample (converters seen, not probabilities), not the "
              f"features. The target of {GAP_LIMIT} is for the 0/1 fit (the "
              "`bench_train` section)."]
    capped = sorted(seed for seed, r in results.items()
                    if r["oracle_labels"]["rounds"] >= r.get("max_rounds", 0))
    if capped:
        lines += ["", "On seed(s) " + ", ".join(map(str, capped)) + " the fit to the "
                  "oracle's probabilities used every round allowed (it had not stopped): "
                  "with more rounds it would come closer still."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=LEADS)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(json.loads(args.child))))
        return
    results = {}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix="bench_ceiling_") as folder:
            print(child(case="simulate", folder=folder, leads=args.leads, seed=seed),
                  flush=True)
            results[seed] = child(case="fit", folder=folder)
            print(seed, results[seed], flush=True)
    publish("bench_ceiling", lines_of(args.leads, results))


if __name__ == "__main__":
    main()
