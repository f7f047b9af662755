"""One account from plain values, numpy only: the API's hot path.

:class:`OnlineAccountScorer` reads the fitted logistic regression once (medians, scaling,
each category's share of the log-odds, coefficients) and then scores an account and its
leave-one-out variants as one small matrix product. It computes the same features as
:mod:`.features` and the same probability as the pipeline (the tests hold them to the
same numbers as :func:`.scoring.score_accounts`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from predictive_scoring.accounts.features import (
    ENGAGED_DAYS,
    NEVER_DAYS,
    NUMERIC,
    PROBABILITY_FLOOR,
)
from predictive_scoring.accounts.model import AccountScorer

NS_PER_DAY = 86_400 * 10**9
UNKNOWN = "\x00unknown"
"""A category value no training account had (what the one-hot encoder ignores)."""


@dataclass(frozen=True)
class OnlineContact:
    """A contact already scored by the lead model, as the account model reads it.

    Attributes:
        lead_id: Its id.
        probability: The lead model's calibrated probability.
        rule_points: The rules' points.
        role: Its buying-group role, or None.
        event_times: Its events' times (ns since the epoch, UTC).
        event_types: Their types.
    """

    lead_id: str
    probability: float
    rule_points: float
    role: str | None
    event_times: Sequence[int]
    event_types: Sequence[str]


@dataclass(frozen=True)
class OnlineAccount:
    """An account's score, baseline and explanation.

    Attributes:
        probability: The account's calibrated probability.
        stage: Its suggested stage.
        points_sum: The contacts' points summed.
        points_max: The best contact's points.
        effects: Per contact (input order): probability with it minus without it.
        missing_roles: Roles whose engagement goes with conversions and no engaged
            contact holds, strongest first.
    """

    probability: float
    stage: str
    points_sum: float
    points_max: float
    effects: np.ndarray
    missing_roles: list[str]


class OnlineAccountScorer:
    """The account model as plain arrays (see the module docstring)."""

    def __init__(self, scorer: AccountScorer) -> None:
        self.scorer = scorer
        pipeline = scorer.pipeline
        prep = pipeline.named_steps["prep"]
        classifier = pipeline.named_steps["classifier"]
        numeric = prep.named_transformers_["numeric"]
        imputer, scaler = numeric[0], numeric[-1]
        n_numeric = len(imputer.statistics_)
        coef = classifier.coef_[0]
        self.medians = imputer.statistics_.astype(float)
        self.weights = coef[:n_numeric] / scaler.scale_
        self.intercept = float(classifier.intercept_[0] - self.weights @ scaler.mean_)
        self.passive = frozenset(scorer.passive_event_types)
        self.categories = self._category_logodds(prep, coef[n_numeric:])
        self.role_index = {role: i for i, role in enumerate(scorer.roles)}

    def _category_logodds(self, prep: Any, coef: np.ndarray) -> list[dict[Any, float]]:
        """Per categorical attribute: value -> its share of the log-odds (one-hot blocks
        add up, so each column's share is measured with the others missing; the share of
        all of them missing goes into the intercept). ``UNKNOWN`` holds a value the
        model never saw."""
        if not self.scorer.categorical:
            return []
        import pandas as pd

        encoder = prep.named_transformers_["categorical"]
        columns = self.scorer.categorical

        def logodds(frame: pd.DataFrame) -> np.ndarray:
            encoded = encoder.transform(frame)
            encoded = encoded.toarray() if hasattr(encoded, "toarray") else encoded
            return encoded @ coef

        base = float(logodds(pd.DataFrame({c: pd.Series([None], dtype=object)
                                           for c in columns}))[0])
        self.intercept += base
        tables = []
        onehot = encoder[-1]
        for i, column in enumerate(columns):
            known = [*(str(v) for v in onehot.categories_[i]), None, UNKNOWN]
            frame = pd.DataFrame({c: pd.Series([None] * len(known), dtype=object)
                                  for c in columns})
            frame[column] = pd.Series(known, dtype=object)
            tables.append({value: float(v - base) for value, v in zip(known, logodds(frame),
                                                                        strict=True)})
        return tables

    def numeric_rows(self, contacts: Sequence[OnlineContact], as_of: int,
                     attributes: Mapping[str, Any]) -> np.ndarray:
        """The account's numeric features, then one row per contact left out."""
        n = len(contacts)
        probability = np.array([c.probability for c in contacts], dtype=float)
        days, recent = self._engagement(contacts, as_of)
        engaged = recent > 0
        roles = np.zeros((n, len(self.role_index)))
        for i, contact in enumerate(contacts):
            column = self.role_index.get(contact.role) if contact.role is not None else None
            if column is not None and engaged[i]:
                roles[i, column] = 1.0
        keep = np.vstack([np.ones(n, dtype=bool), ~np.eye(n, dtype=bool)])
        log_miss = np.log1p(-np.clip(probability, 0, 1 - PROBABILITY_FLOOR))
        combined = -np.expm1(keep @ log_miss)
        best = np.where(keep, probability[None, :], -np.inf).max(axis=1)
        best = np.where(np.isfinite(best), best, 0.0)
        counts = keep.sum(axis=1).astype(float)
        nearest = np.where(keep & ~np.isnan(days)[None, :], days[None, :], np.inf).min(axis=1)
        nearest = np.where(np.isfinite(nearest), nearest, NEVER_DAYS)
        flags = (keep[:, :, None] & (roles[None, :, :] > 0)).any(axis=1).astype(float)
        numbers = [attributes.get(c) for c in self.scorer.numeric]
        extra = np.array([_signed_log(v) for v in numbers], dtype=float)
        columns = [_logit(combined), _logit(best), np.log1p(counts),
                   (keep & engaged[None, :]).sum(axis=1).astype(float),
                   np.log1p(np.minimum(nearest, NEVER_DAYS))]
        return np.column_stack([*columns, flags, np.tile(extra, (n + 1, 1))])

    def _engagement(self, contacts: Sequence[OnlineContact], as_of: int
                    ) -> tuple[np.ndarray, np.ndarray]:
        days = np.full(len(contacts), np.nan)
        recent = np.zeros(len(contacts))
        since = as_of - ENGAGED_DAYS * NS_PER_DAY
        for i, contact in enumerate(contacts):
            times = np.asarray(contact.event_times, dtype=np.int64)
            active = np.array([t not in self.passive for t in contact.event_types],
                              dtype=bool) & (times < as_of) if len(times) else np.zeros(0,
                                                                                       bool)
            if active.any():
                days[i] = (as_of - times[active].max()) / NS_PER_DAY
                recent[i] = float((times[active] >= since).sum())
        return days, recent

    def score(self, contacts: Sequence[OnlineContact], as_of: int,
              attributes: Mapping[str, Any]) -> OnlineAccount:
        """Score an account of at least one contact as of ``as_of`` (ns, UTC).

        Args:
            contacts: Its contacts, scored by the lead model.
            as_of: The moment (events at or after it are not read).
            attributes: The company's own attributes (missing ones are unknown).
        """
        rows = self.numeric_rows(contacts, as_of, attributes)
        filled = np.where(np.isnan(rows), self.medians[None, :], rows)
        logodds = self.intercept + filled @ self.weights + sum(
            _lookup(table, attributes.get(column))
            for column, table in zip(self.scorer.categorical, self.categories, strict=True))
        probability = 1 / (1 + np.exp(-logodds))
        points = np.array([c.rule_points for c in contacts], dtype=float)
        flags = rows[0, len(NUMERIC):len(NUMERIC) + len(self.role_index)]
        ordered = sorted(self.scorer.role_lift, key=lambda r: -self.scorer.role_lift[r])
        missing = [r for r in ordered if flags[self.role_index[r]] == 0]
        return OnlineAccount(float(probability[0]),
                             str(self.scorer.stage(probability[:1])[0]),
                             float(points.sum()), float(points.max()),
                             probability[0] - probability[1:], missing)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return np.log(p / (1 - p))


def _signed_log(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return float(np.sign(number) * np.log1p(abs(number)))


def _lookup(table: Mapping[Any, float], value: Any) -> float:
    """A category's share of the log-odds (missing: None's; never seen: UNKNOWN's)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return table[None]
    return table.get(str(value), table[UNKNOWN])
