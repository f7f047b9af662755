"""Realised accuracy of the model next to the points, per period and per model version.

Only matured scores are judged (:mod:`.outcomes`), the model and the points always on
the same rows. For each group of rows: leads scored, matured, pending (and the other
statuses), the realised conversion; the model's ROC-AUC, PR-AUC and ECE (its
probabilities are meant to be honest); the points' ROC-AUC and PR-AUC (points rank leads
but are no probability: no ECE); and the share of converters each captures at the
points' hand-off volume (the matured leads the rules put at the hand-off stage or later,
MQL by default), ranked by the model's probability and by the points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from predictive_scoring import evaluate
from predictive_scoring.monitoring.outcomes import MATURED, STATUSES
from predictive_scoring.stages import FUNNEL, Stage

Period = Literal["month", "week"]
FREQUENCIES = {"month": "M", "week": "W-SUN"}
"""Weeks run Monday to Sunday."""


def finite(value: Any) -> float | None:
    """A JSON number: NaN and infinities are null."""
    number = float(value)
    return number if math.isfinite(number) else None


def handoff_volume(rule_stages: pd.Series, handoff: Stage) -> int:
    """Leads the rules put at the hand-off stage or later in the funnel."""
    later = {s.value for s in FUNNEL if s.rank >= handoff.rank}
    return int(rule_stages.isin(later).sum())


def scored_block(rows: pd.DataFrame, handoff: Stage, ece_bins: int) -> dict[str, Any]:
    """Counts, realised conversion, and the model's and the points' accuracy of some rows
    (with ``status`` and ``label``)."""
    counts = rows["status"].value_counts()
    matured = rows.loc[rows["status"] == MATURED]
    y = matured["label"].to_numpy(np.int8)
    block: dict[str, Any] = {"n_scored": len(rows), "n_leads": int(rows["lead_id"].nunique()),
                             "n_matured": len(matured),
                             **{f"n_{status}": int(counts.get(status, 0))
                                for status in STATUSES if status != MATURED},
                             "conversion": finite(y.mean()) if len(y) else None}
    volume = handoff_volume(matured["rule_stage"], handoff)
    block["handoff_volume"] = volume
    block["model"] = _accuracy(y, matured["probability"].to_numpy(), volume, ece_bins)
    block["rules"] = _accuracy(y, matured["rule_points"].to_numpy(), volume, None)
    return block


def _accuracy(y: np.ndarray, score: np.ndarray, volume: int,
              ece_bins: int | None) -> dict[str, float | None]:
    """ROC-AUC, PR-AUC, (a probability) ECE, converters captured at ``volume``; None
    where undefined (no matured lead, or one outcome only)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    both = len(y) > 0 and 0 < y.sum() < len(y)
    out = {"roc_auc": finite(roc_auc_score(y, score)) if both else None,
           "pr_auc": finite(average_precision_score(y, score)) if both else None,
           "captured_at_handoff": (finite(evaluate.captured_at_volume(y, score, volume))
                                   if y.sum() > 0 else None)}
    if ece_bins is not None:
        out["ece"] = (finite(evaluate.expected_calibration_error(y, score, ece_bins))
                      if len(y) else None)
    return out


def periods_of(moments: pd.Series, period: Period) -> pd.Series:
    """Each moment's period label: ``2025-03`` (month) or ``2025-03-10`` (the Monday of
    its week)."""
    naive = moments.dt.tz_convert("UTC").dt.tz_localize(None)
    codes, uniques = pd.factorize(naive.dt.to_period(FREQUENCIES[period]))
    labels = np.array([_period_label(p) for p in uniques], dtype=object)
    return pd.Series(labels[codes], index=moments.index, dtype=object)


def _period_label(period: pd.Period) -> str:
    return str(period) if period.freqstr.startswith("M") else str(period.start_time.date())


def period_range(first: pd.Timestamp, last: pd.Timestamp, period: Period) -> list[str]:
    """Every period from the one holding ``first`` to the one holding ``last``."""
    start = first.tz_convert("UTC").tz_localize(None).to_period(FREQUENCIES[period])
    end = last.tz_convert("UTC").tz_localize(None).to_period(FREQUENCIES[period])
    return [_period_label(p) for p in pd.period_range(start, end)]


def by_period(rows: pd.DataFrame, period: Period, handoff: Stage, ece_bins: int,
              window: tuple[pd.Timestamp | None, pd.Timestamp | None]
              ) -> tuple[list[dict[str, Any]], list[str]]:
    """One block per period and model version, and the periods with no score at all.

    Args:
        rows: Logged rows with outcomes.
        period: ``month`` or ``week``.
        handoff: The points' hand-off stage.
        ece_bins: Equal-frequency bins of the ECE.
        window: ``--since`` and ``--until`` (the periods between them are all listed,
            empty ones included); None: the first and last scores'.
    """
    if rows.empty and None in window:
        return [], []
    labels = periods_of(rows["moment"], period) if len(rows) else pd.Series(dtype=object)
    first = window[0] if window[0] is not None else rows["moment"].min()
    last = (window[1] - pd.Timedelta(microseconds=1) if window[1] is not None
            else rows["moment"].max())
    every = period_range(first, last, period) if first <= last else []
    blocks, empty = [], []
    groups = rows.groupby(labels.to_numpy(), sort=False).indices if len(rows) else {}
    for label in every:
        in_period = rows.iloc[groups[label]] if label in groups else rows.iloc[:0]
        if in_period.empty:
            empty.append(label)
            blocks.append({"period": label, "model_version": None,
                           **scored_block(in_period, handoff, ece_bins)})
            continue
        for version, group in in_period.groupby(_version_key(in_period), sort=True):
            blocks.append({"period": label, "model_version": version,
                           **scored_block(group, handoff, ece_bins)})
    return blocks, empty


def _version_key(rows: pd.DataFrame) -> pd.Series:
    return rows["model_name"].astype(str) + "/" + rows["model_version"].astype(str)


def by_version(rows: pd.DataFrame, handoff: Stage, ece_bins: int) -> dict[str, Any]:
    """One block per model version (``name/version``) over the whole window."""
    if rows.empty:
        return {}
    return {version: scored_block(group, handoff, ece_bins)
            for version, group in rows.groupby(_version_key(rows), sort=True)}


def stage_tables(rows: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Conversion of the matured leads by the model's suggested stage and by the rules'
    stage, funnel stages in order (stages no lead sits in left out)."""
    matured = rows.loc[rows["status"] == MATURED]
    out = {}
    for name, column in (("model", "suggested_stage"), ("rules", "rule_stage")):
        stages = matured[column].fillna("unknown").astype(str)
        present = set(stages.unique())
        order = [s.value for s in FUNNEL if s.value in present]
        order += sorted(present - set(order))
        if not len(stages):
            out[name] = []
            continue
        table = evaluate.stage_conversion(matured["label"].to_numpy(np.int8),
                                          stages.to_numpy(object), order)
        out[name] = [{"stage": stage, "leads": int(row["leads"]),
                      "share_of_leads": finite(row["share_of_leads"]),
                      "conversion": finite(row["conversion_rate"])}
                     for stage, row in table.iterrows()]
    return out


def versions_of(rows: pd.DataFrame) -> Sequence[tuple[str, str]]:
    """The (model name, version) pairs of the log, in order of first appearance."""
    pairs = rows[["model_name", "model_version"]].drop_duplicates()
    return [(str(n), str(v)) for n, v in pairs.itertuples(index=False)]
