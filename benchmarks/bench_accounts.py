"""Account scores on simulated data: quality against the account oracle and the points
baselines, contact-level quality alongside, and (``--part http``) the HTTP cost of an
account of 10 contacts against one lead.

Usage: ``python -m benchmarks.bench_accounts [--leads 200000] [--part quality|http|all]``.

Quality: the default config (contacts of companies, snapshots 7 and 30 days after the
first contact, horizon 90 days) simulated with ``--leads`` leads; ``run_training``
(LightGBM) and the account step (``accounts.training.train_accounts``) exactly as
``train`` runs them. Targets (issue 23): account ROC-AUC within 0.01 of the account
oracle's and >= 0.05 above the better of the points sum and maximum, on the same test
accounts; per-contact scores unchanged (the account step changes no contact score, and the
contact model's gap to the contact oracle is reported in the same run). A LightGBM account
model on the same features is fitted for comparison (the reason the shipped model is a
logistic regression).

HTTP: one LightGBM bundle (with its account model) served by ``uvicorn`` as in
``bench_serve``; sequential requests through the minimal keep-alive client, taking turns
in blocks: ``POST /v1/score`` (one held-out lead) and ``POST /v1/accounts/score`` (an
account of 10 of them). Target: account p99 < 5x single-lead p99.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._results import machine_info, update_section
from predictive_scoring.accounts.training import (
    AccountData,
    AccountRun,
    account_data,
    fit_accounts,
)
from predictive_scoring.config import (
    BaseConfig,
    DatasetConfig,
    ModelConfig,
    RulesConfig,
    load_config,
)
from predictive_scoring.data.dataset import load_events_dataset
from predictive_scoring.data.synthetic import simulate_into
from predictive_scoring.train import TrainingPlan, TrainingRun
from predictive_scoring.workflow.training import run_training

REPO = Path(__file__).resolve().parents[1]
SIMULATED = REPO / "configs/datasets/simulated.yaml"
BASE = REPO / "configs/base.yaml"
SEED = 7
SECTION = "bench_accounts"
CHECKED = 20_000
"""Test snapshots scored before and after the account step (their scores must match)."""


def train_all(folder: Path, n_leads: int) -> tuple[Any, TrainingRun, Any, AccountRun,
                                                     dict[str, float]]:
    """Simulate, train the lead model, then the account step as ``train`` runs it
    (``train_accounts`` is ``account_data`` then ``fit_accounts``); wall seconds of each."""
    seconds = {}
    start = time.perf_counter()
    config = simulate_into(load_config(SIMULATED, DatasetConfig), n_leads, SEED, folder)
    seconds["simulate"] = time.perf_counter() - start
    dataset = load_events_dataset(config, Path("."))
    plan = TrainingPlan(config, load_config(REPO / "configs/models/lightgbm.yaml", ModelConfig),
                        load_config(REPO / config.rules, RulesConfig),
                        load_config(BASE, BaseConfig))
    start = time.perf_counter()
    run = run_training(dataset, plan)
    seconds["lead model"] = time.perf_counter() - start
    start = time.perf_counter()
    data = account_data(run.trained.scorer, None, dataset, run.examples.frame,
                        run.trained.rows, config, plan.base.training)
    accounts = fit_accounts(data, plan)
    seconds["account step"] = time.perf_counter() - start
    return dataset, run, data, accounts, seconds


def lightgbm_alternative(data: AccountData, scorer: Any) -> float:
    """Test ROC-AUC of a LightGBM account model on the same features and accounts."""
    import lightgbm
    from sklearn.metrics import roc_auc_score

    frames = {name: data.frames[name].assign(**{
        c: data.frames[name][c].astype("category") for c in scorer.categorical})
        for name in ("train", "test")}
    categories = {c: frames["train"][c].cat.categories for c in scorer.categorical}
    frames["test"] = frames["test"].assign(**{
        c: pd.Categorical(frames["test"][c].astype(object), categories=categories[c])
        for c in scorer.categorical})
    model = lightgbm.LGBMClassifier(n_estimators=300, learning_rate=0.03, num_leaves=7,
                                    min_child_samples=50, subsample=0.8, subsample_freq=1,
                                    verbose=-1, random_state=SEED)
    model.fit(frames["train"], data.labels["train"])
    return float(roc_auc_score(data.labels["test"],
                               model.predict_proba(frames["test"])[:, 1]))


def quality(n_leads: int) -> str:
    with tempfile.TemporaryDirectory() as folder:
        dataset, run, data, accounts, seconds = train_all(Path(folder), n_leads)
        test = run.examples.frame.iloc[run.trained.rows["test"][:CHECKED]]
        before = run.trained.scorer.score(test, dataset.events)["probability"].to_numpy()
        run.trained.scorer.accounts = accounts.scorer
        after = run.trained.scorer.score(test, dataset.events)["probability"].to_numpy()
        alternative = lightgbm_alternative(data, accounts.scorer)
    m, lead = accounts.metrics, run.metrics
    gap = m["oracle_roc_auc"] - m["model_roc_auc"]
    margin = m["model_roc_auc"] - m["rules_roc_auc"]
    contact_gap = lead["oracle"]["roc_auc"] - lead["model"]["roc_auc"]
    rows = [
        ("account model (logistic, shipped)", m["model_roc_auc"], m["ece"]),
        ("account model (LightGBM, same features)", alternative, float("nan")),
        ("account oracle", m["oracle_roc_auc"], m["oracle_ece"]),
        ("points sum", m["points_sum_roc_auc"], float("nan")),
        ("points max", m["points_max_roc_auc"], float("nan")),
    ]
    table = "\n".join(f"| {name} | {auc:.4f} | {auc / m['oracle_roc_auc']:.4f} | "
                      f"{'-' if np.isnan(ece) else f'{ece:.4f}'} |" for name, auc, ece in rows)
    return f"""### Quality ({n_leads:,} simulated leads, seed {SEED})

{len(dataset.leads):,} contacts in {dataset.leads['account_id'].nunique():,} accounts; \
simulate {seconds['simulate']:.0f} s, lead model (LightGBM) {seconds['lead model']:.0f} s, \
account step {seconds['account step']:.0f} s; load average at the end \
{os.getloadavg()[0]:.1f} (2 cores, shared). Account snapshots: {m['n_train']:,} to learn \
from (first contact in the lead model's validation period), {m['n_test']:,} test \
(first contact in its test period), positive rate {m['positive_rate_test']:.2%}.

| scorer (same test account snapshots) | ROC-AUC | ratio to the oracle (its ceiling) | ECE |
|---|---:|---:|---:|
{table}

| check | result |
|---|---|
| account ROC-AUC within 0.01 of the account oracle | \
{'PASS' if gap <= 0.01 else 'FAIL'} (oracle - model = {gap:+.4f}) |
| account ROC-AUC >= better points baseline + 0.05 | \
{'PASS' if margin >= 0.05 else 'FAIL'} (model - best points = {margin:+.4f}) |
| per-contact scores unchanged by the account step | \
{'PASS' if np.array_equal(before, after) else 'FAIL'} ({len(before):,} test snapshots \
identical) |
| contact model vs the contact oracle, same run | ROC-AUC {lead['model']['roc_auc']:.4f} vs \
{lead['oracle']['roc_auc']:.4f} (gap {contact_gap:+.4f}) |
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--part", choices=["quality", "http", "all"], default="all")
    args = parser.parse_args()
    heading = {SECTION: "Accounts: quality", f"{SECTION}_http": "Accounts: HTTP"}
    bodies = {}
    if args.part in ("quality", "all"):
        bodies[SECTION] = quality(args.leads)
    if args.part in ("http", "all"):
        from benchmarks.bench_accounts_http import http_section

        bodies[f"{SECTION}_http"] = http_section()
    for name, body in bodies.items():
        text = (f"## {heading[name]} (`python -m benchmarks.bench_accounts --part "
                f"{'quality' if name == SECTION else 'http'}`)\n\n{machine_info()}\n\n"
                f"{body}")
        update_section(name, text)
        print(text)


if __name__ == "__main__":
    main()
