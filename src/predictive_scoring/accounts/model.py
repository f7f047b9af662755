"""The account model: a logistic regression on account features, calibrated by its own
loss (checked by the ECE on the test accounts), with a suggested account stage.

A logistic regression was picked by measurement over LightGBM on these few, smooth
features (``benchmarks/bench_accounts.py`` compares both on the same test accounts).
The :class:`AccountScorer` travels inside the lead scorer (``LeadScorer.accounts``), so
the MLflow bundle holds both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from predictive_scoring.accounts.features import (
    NUMERIC,
    account_attributes,
    account_features,
    contact_engagement,
)
from predictive_scoring.stages import Stage, stage_for_values

MAX_ROLES = 12
"""Roles with a flag of their own (the most frequent in training)."""
REGULARISATION = 1.0


@dataclass
class AccountScorer:
    """Everything needed to score an account from its contacts' scores and events.

    Attributes:
        roles: Roles with an ``engaged_<role>`` feature.
        passive_event_types: Event types that do not count as engagement.
        categorical: The company's categorical attributes used.
        numeric: The company's numeric attributes used.
        pipeline: Fitted preprocessing and logistic regression.
        stage_thresholds: Minimum probability of each suggested account stage.
        max_contacts: Most contacts an account may send to the API.
        role_lift: Roles whose engagement goes with conversions -> log rate ratio.
        metadata: Facts about the fit (training accounts, test metrics).
        id_column: The leads' column naming their account (in the dataset's files).
        role_column: The leads' role column, or None.
    """

    roles: list[str]
    passive_event_types: list[str]
    categorical: list[str]
    numeric: list[str]
    pipeline: Any
    stage_thresholds: dict[Stage, float]
    max_contacts: int
    role_lift: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    id_column: str = "account_id"
    role_column: str | None = None

    @property
    def columns(self) -> list[str]:
        """The model's input columns, in order."""
        return [*NUMERIC, *(f"engaged_{r}" for r in self.roles), *self.numeric,
                *self.categorical]

    def engagement(self, contacts: pd.DataFrame, events: pd.DataFrame | None) -> pd.DataFrame:
        """Contacts with their engagement columns added (see ``contact_engagement``)."""
        return pd.concat([contacts, contact_engagement(contacts, events,
                                                       self.passive_event_types)], axis=1)

    def frame(self, contacts: pd.DataFrame, table: pd.DataFrame | None) -> pd.DataFrame:
        """Model input per account snapshot (indexed by account id and as_of, sorted).

        Args:
            contacts: Contact rows with ``probability`` and engagement columns.
            table: The accounts file's rows, or None (attributes from the contacts).
        """
        return self.frame_of(account_features(contacts, self.roles), contacts, table)

    def frame_of(self, features: pd.DataFrame, contacts: pd.DataFrame,
                 table: pd.DataFrame | None) -> pd.DataFrame:
        """Model input from account features (indexed with an ``account_id`` level)."""
        attributes = account_attributes(features.index, contacts, table,
                                        [*self.numeric, *self.categorical])
        return prepared(pd.concat([features, attributes], axis=1), self.numeric,
                        self.categorical)[self.columns]

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability that the account converts within the horizon."""
        return self.pipeline.predict_proba(frame[self.columns])[:, 1]

    def stage(self, probability: np.ndarray) -> np.ndarray:
        """Suggested account stage per probability."""
        return stage_for_values(probability, self.stage_thresholds)

    def missing_roles(self, frame: pd.DataFrame) -> list[list[str]]:
        """Per account: the roles whose engagement goes with conversions and that no
        engaged contact holds, the strongest first."""
        ordered = sorted(self.role_lift, key=lambda r: -self.role_lift[r])
        flags = {r: frame[f"engaged_{r}"].to_numpy() > 0 for r in ordered}
        return [[r for r in ordered if not flags[r][i]] for i in range(len(frame))]


def prepared(frame: pd.DataFrame, numeric: Sequence[str],
             categorical: Sequence[str]) -> pd.DataFrame:
    """Account attributes in the model's types: numbers as float (signed log), text as
    object with missing as None."""
    numbers = {c: np.sign(v) * np.log1p(np.abs(v)) for c in numeric
               for v in [pd.to_numeric(frame[c], errors="coerce").to_numpy(float)]}
    texts = {c: frame[c].astype(object).where(frame[c].notna(), None) for c in categorical}
    return frame.assign(**numbers, **texts)


def roles_of(contacts: pd.DataFrame) -> list[str]:
    """The most frequent roles of the training contacts (the flags' vocabulary)."""
    from predictive_scoring.accounts.contract import ACCOUNT_ROLE

    if ACCOUNT_ROLE not in contacts:
        return []
    counts = contacts[ACCOUNT_ROLE].dropna().astype(str).value_counts()
    return sorted(counts.index[:MAX_ROLES])


def build_pipeline(numeric: Sequence[str], categorical: Sequence[str]) -> Any:
    """Imputation and scaling of numbers, one-hot categories, logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    steps = [("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
              list(numeric))]
    if categorical:
        steps.append(("categorical", make_pipeline(
            SimpleImputer(strategy="constant", fill_value="(missing)"),
            OneHotEncoder(handle_unknown="ignore", min_frequency=20)), list(categorical)))
    return Pipeline([("prep", ColumnTransformer(steps)),
                     ("classifier", LogisticRegression(C=REGULARISATION, max_iter=2000))])


def fit_account_scorer(frame: pd.DataFrame, label: np.ndarray, template: AccountScorer,
                       stage_shares: dict[Stage, float], order: list[Stage]
                       ) -> AccountScorer:
    """Fit the account model on training account snapshots.

    Args:
        frame: Model input (:meth:`AccountScorer.frame`) of the training snapshots.
        label: Their labels.
        template: The scorer's settings (roles, attributes, ...); its pipeline is ignored.
        stage_shares: Share of training accounts per stage of the points baseline (the
            best contact's stage), which the suggested stages keep.
        order: The stages, along the funnel.
    """
    from predictive_scoring import evaluate

    n_numeric = len(NUMERIC) + len(template.roles) + len(template.numeric)
    pipeline = build_pipeline(template.columns[:n_numeric], template.categorical)
    pipeline.fit(frame[template.columns], label)
    probability = pipeline.predict_proba(frame[template.columns])[:, 1]
    thresholds = evaluate.stage_thresholds_matching_shares(
        probability, {s.value: share for s, share in stage_shares.items()},
        [s.value for s in order])
    return AccountScorer(template.roles, template.passive_event_types, template.categorical,
                         template.numeric, pipeline,
                         {Stage(k): float(v) for k, v in thresholds.items()},
                         template.max_contacts, role_lift(frame, label, template.roles),
                         dict(template.metadata), template.id_column, template.role_column)


def role_lift(frame: pd.DataFrame, label: np.ndarray, roles: Sequence[str]) -> dict[str, float]:
    """Roles whose engagement goes with account conversions, beyond the number of engaged
    contacts: role -> log(observed / expected conversions) of the training accounts with
    an engaged contact in it, expected from the accounts without one that have as many
    engaged contacts (kept when positive, with at least 20 accounts on each side)."""
    engaged = np.minimum(frame["engaged_contacts"].to_numpy(), 4).astype(int)
    lift = {}
    for role in roles:
        has = frame[f"engaged_{role}"].to_numpy() > 0
        if min(has.sum(), (~has).sum()) < 20:
            continue
        rates = pd.Series(label[~has]).groupby(engaged[~has]).mean()
        expected = rates.reindex(engaged[has]).fillna(label[~has].mean()).to_numpy().sum()
        observed = label[has].sum()
        if observed > 0 and expected > 0 and observed > expected:
            lift[role] = float(np.log(observed / expected))
    return lift
