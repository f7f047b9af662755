"""The train step for accounts: account snapshots, the contacts' scores, the account model
fitted and compared with the points baseline (and the oracle, on simulated data) on the
same test accounts.

Contact scores feed the account model, so it must learn from scores the contact model
did not fit: its training accounts are those whose first contact arrived in the contact
model's validation period (every contact of theirs is a validation or test lead), and its
test accounts those whose first contact arrived in the test period.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from predictive_scoring.accounts.baseline import account_points
from predictive_scoring.accounts.contract import ACCOUNT_ID, coverage
from predictive_scoring.accounts.model import AccountScorer, fit_account_scorer, roles_of
from predictive_scoring.accounts.snapshots import KEY, AccountSnapshots, account_snapshots

SCORE_CHUNK = 100_000
"""Contact rows scored at a time (bounds memory on big datasets)."""


@dataclass(frozen=True)
class AccountRun:
    """The account step's result.

    Attributes:
        scorer: The fitted account model (None when it could not be learnt).
        metrics: metrics.json's ``accounts`` block (empty when no model was learnt).
        test: Per test account snapshot: ``account_id``, ``as_of``, ``label``,
            ``probability``, ``points_sum``, ``points_max`` and (simulated data)
            ``true_probability``.
        notes: What was reported on the way (coverage, exclusions, too little data).
    """

    scorer: AccountScorer | None
    metrics: dict[str, Any]
    test: pd.DataFrame | None
    notes: list[str]


def slice_bounds(created_at: pd.Series, rows: dict[str, np.ndarray]
                 ) -> tuple[pd.Timestamp, pd.Timestamp]:
    """When the contact model's validation and test periods start (lead creation)."""
    return (created_at.iloc[rows["valid"]].min(), created_at.iloc[rows["test"]].min())


def score_contacts(lead_scorer: Any, contacts: pd.DataFrame,
                   events: pd.DataFrame | None) -> pd.DataFrame:
    """Contacts with the lead model's ``probability`` and the rules' ``rule_points``."""
    parts = []
    for start in range(0, len(contacts), SCORE_CHUNK):
        chunk = contacts.iloc[start:start + SCORE_CHUNK]
        own = (events.loc[events["lead_id"].isin(chunk["lead_id"].unique())]
               if events is not None else None)
        scored = lead_scorer.score(chunk, own)
        parts.append(chunk.assign(probability=scored["probability"].to_numpy(),
                                  rule_points=scored["rule_points"].to_numpy()))
    return pd.concat(parts) if parts else contacts.assign(probability=[], rule_points=[])


@dataclass(frozen=True)
class AccountData:
    """The account snapshots of both slices, as one account model reads them."""

    template: AccountScorer
    frames: dict[str, pd.DataFrame]
    labels: dict[str, np.ndarray]
    points: dict[str, pd.DataFrame]
    truth: pd.DataFrame | None
    notes: list[str]
    leads_without_account: int


def train_accounts(lead_scorer: Any, dataset: Any, examples_frame: pd.DataFrame,
                   rows: dict[str, np.ndarray], plan: Any) -> AccountRun | None:
    """Learn and evaluate the account model of a trained lead model (None: the dataset
    has no accounts section).

    Args:
        lead_scorer: The trained ``LeadScorer``.
        dataset: The validated dataset (an ``EventsDataset`` or ``TableDataset``).
        examples_frame: The lead examples (for the slices' periods).
        rows: The lead examples' slices.
        plan: The ``TrainingPlan``.
    """
    data = account_data(lead_scorer, None, dataset, examples_frame, rows, plan.config,
                        plan.base.training)
    if not isinstance(data, AccountData):
        return data
    return fit_accounts(data, plan)


def fit_accounts(data: AccountData, plan: Any) -> AccountRun:
    """Fit the account model on the training accounts and evaluate it on the test ones."""
    order, shares = _points_stage_shares(data.points["train"]["points_max"].to_numpy(),
                                         plan.rules)
    scorer = fit_account_scorer(data.frames["train"], data.labels["train"], data.template,
                                shares, order)
    return _evaluated(scorer, data, plan.base.training.ece_bins)


def evaluate_accounts(lead_scorer: Any, dataset: Any, examples_frame: pd.DataFrame,
                      rows: dict[str, np.ndarray], config: Any, training: Any
                      ) -> AccountRun | None:
    """The account step's evaluation of the account model a lead scorer holds, on its
    test accounts rebuilt from the data (the report of a registered model); None when the
    scorer or the dataset has no accounts."""
    if getattr(lead_scorer, "accounts", None) is None:
        return None
    data = account_data(lead_scorer, lead_scorer.accounts, dataset, examples_frame, rows,
                         config, training)
    if not isinstance(data, AccountData):
        return data
    return _evaluated(lead_scorer.accounts, data, training.ece_bins)


def _evaluated(scorer: AccountScorer, data: AccountData, ece_bins: int) -> AccountRun:
    test = _test_table(scorer, data.frames["test"], data.labels["test"], data.points["test"],
                       data.truth)
    metrics = account_metrics(test, len(data.labels["train"]), ece_bins)
    metrics["leads_without_account"] = data.leads_without_account
    scorer.metadata["test_metrics"] = metrics
    return AccountRun(scorer, metrics, test, data.notes)


def account_data(lead_scorer: Any, fitted: AccountScorer | None, dataset: Any,
                  examples_frame: pd.DataFrame, rows: dict[str, np.ndarray], config: Any,
                  training: Any) -> AccountData | AccountRun | None:
    """Account snapshots split by the lead model's periods, their contacts scored, and
    the account model's input (``fitted``'s, or a new template's);
    an AccountRun without a model (with the reason in its notes) when there is nothing
    to learn from, None without an accounts section."""
    from predictive_scoring.data.dataset import EventsDataset
    from predictive_scoring.data.snapshots import data_end_of

    spec = config.accounts
    if spec is None:
        return None
    if not isinstance(dataset, EventsDataset):
        return AccountRun(None, {}, None, [
            "accounts: account scores are learnt on events-shaped datasets (account "
            "snapshots need time); the table's account ids were read and checked"])
    covered = coverage(dataset.leads)
    notes = [n for n in [covered.note(config.files.leads)] if n]
    if not covered.n_with_account:
        return AccountRun(None, {}, None, notes)
    snapshots = account_snapshots(dataset.leads, dataset.stage_changes, config.snapshots,
                                  data_end_of(dataset))
    notes.append(snapshots.note())
    valid_start, test_start = slice_bounds(examples_frame["created_at"], rows)
    first = snapshots.frame["first_created"]
    part = {"train": snapshots.frame.loc[(first >= valid_start) & (first < test_start)],
            "test": snapshots.frame.loc[first >= test_start]}
    positives = int(part["train"]["label"].sum())
    negatives = len(part["train"]) - positives
    if fitted is None and (min(positives, negatives) < training.min_class_examples
                           or not len(part["test"])):
        notes.append(f"accounts: too few accounts to learn from ({positives} converted and "
                     f"{negatives} not in the validation period; at least "
                     f"{training.min_class_examples} of each are needed)")
        return AccountRun(None, {}, None, notes)
    contacts = _contacts_of(snapshots, pd.concat([part["train"], part["test"]]))
    contacts = score_contacts(lead_scorer, contacts, dataset.events)
    template = fitted or AccountScorer(
        roles_of(contacts.loc[_in(contacts, part["train"])]), list(spec.passive_event_types),
        list(spec.attributes.categorical), list(spec.attributes.numeric), None, {},
        spec.max_contacts, id_column=spec.id_column, role_column=spec.role_column)
    contacts = template.engagement(contacts, dataset.events)
    table = dataset.accounts.table if dataset.accounts is not None else None
    frames = {name: template.frame(contacts.loc[_in(contacts, chosen)], table)
              for name, chosen in part.items()}
    labels = {name: _aligned(chosen, frames[name].index)["label"].to_numpy(np.int8)
              for name, chosen in part.items()}
    points = {name: account_points(contacts.loc[_in(contacts, chosen)])
              for name, chosen in part.items()}
    return AccountData(template, frames, labels, points,
                        dataset.accounts.truth if dataset.accounts is not None else None,
                        notes, covered.n_leads - covered.n_with_account)


def add_accounts(run: Any, dataset: Any, plan: Any) -> None:
    """The train flow's account step: learn the account model of a training run, put it
    in the run's scorer (so the bundle holds it), its block in metrics.json and its notes
    in the run's notes."""
    result = train_accounts(run.trained.scorer, dataset, run.examples.frame, run.trained.rows,
                            plan)
    if result is None:
        return
    run.accounts = result
    run.trained.scorer.accounts = result.scorer
    if result.scorer is not None:
        run.metrics["accounts"] = result.metrics
    run.metrics["notes"] = [*run.metrics.get("notes", []), *result.notes]


def _contacts_of(snapshots: AccountSnapshots, chosen: pd.DataFrame) -> pd.DataFrame:
    return snapshots.contacts.loc[_in(snapshots.contacts, chosen)].reset_index(drop=True)


def _in(contacts: pd.DataFrame, chosen: pd.DataFrame) -> np.ndarray:
    """Contact rows belonging to the chosen account snapshots."""
    keys = pd.MultiIndex.from_frame(chosen[KEY].astype({ACCOUNT_ID: str}))
    return pd.MultiIndex.from_frame(contacts[KEY].astype({ACCOUNT_ID: str})).isin(keys)


def _aligned(chosen: pd.DataFrame, index: pd.MultiIndex) -> pd.DataFrame:
    keyed = chosen.assign(**{ACCOUNT_ID: chosen[ACCOUNT_ID].astype(str)}).set_index(KEY)
    wanted = pd.MultiIndex.from_arrays([index.get_level_values(0).astype(str),
                                        index.get_level_values(1)], names=KEY)
    return keyed.reindex(wanted)


def _points_stage_shares(points_max: np.ndarray, rules: Any) -> tuple[list, dict]:
    """The rules' stages of each account's best contact, and the share in each."""
    from predictive_scoring.stages import stage_for_values
    from predictive_scoring.train import rule_stage_shares

    return rule_stage_shares(stage_for_values(points_max, rules.stage_thresholds), rules)


def _test_table(scorer: AccountScorer, frame: pd.DataFrame, label: np.ndarray,
                points: pd.DataFrame, truth: pd.DataFrame | None) -> pd.DataFrame:
    keys = frame.index.to_frame(index=False)
    test = keys.assign(label=label, probability=scorer.probability(frame),
                       points_sum=points["points_sum"].to_numpy(),
                       points_max=points["points_max"].to_numpy())
    if truth is not None:
        known = _aligned(truth, frame.index)["true_probability"].to_numpy(float)
        if not np.isnan(known).any():
            test["true_probability"] = known
    return test


def account_metrics(test: pd.DataFrame, n_train: int, ece_bins: int) -> dict[str, Any]:
    """metrics.json's ``accounts`` block: the model, the two points baselines (and the
    oracle) on the same test account snapshots."""
    from predictive_scoring import evaluate

    y = test["label"].to_numpy()
    auc = {name: _auc(y, test[column].to_numpy(float)) for name, column in
           [("model", "probability"), ("points_sum", "points_sum"),
            ("points_max", "points_max")]}
    block: dict[str, Any] = {
        "n_train": n_train, "n_test": len(test), "positive_rate_test": float(y.mean()),
        "model_roc_auc": auc["model"],
        "rules_roc_auc": max(auc["points_sum"], auc["points_max"]),
        "points_sum_roc_auc": auc["points_sum"], "points_max_roc_auc": auc["points_max"],
        "ece": evaluate.expected_calibration_error(y, test["probability"].to_numpy(),
                                                   ece_bins),
    }
    if "true_probability" in test:
        block["oracle_roc_auc"] = _auc(y, test["true_probability"].to_numpy(float))
        block["oracle_ece"] = evaluate.expected_calibration_error(
            y, test["true_probability"].to_numpy(), ece_bins)
    return block


def _auc(y: np.ndarray, values: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, values)) if np.unique(y).size == 2 else float("nan")
