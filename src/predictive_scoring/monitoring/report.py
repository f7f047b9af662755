"""``monitoring.json``: everything ``predictive-scoring monitor`` found, as one document.

Top-level keys: ``n_scored`` (scores logged), ``n_leads`` (distinct leads), ``n_matured``,
``n_pending`` (and the other statuses of
:mod:`.outcomes`), ``conversion``, ``model`` and ``rules`` (realised accuracy over every
matured score of the window), ``handoff_volume``, ``by_period`` (per period and model
version; empty periods listed), ``by_version``, ``stages`` (conversion by the model's
suggested stage and by the rules' stage), ``drift`` (per model version), ``alerts``,
``problems`` (what could not be judged, named and counted) and ``settings`` (the window,
target, horizon, hand-off stage and thresholds used).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from predictive_scoring.config import MonitoringConfig
from predictive_scoring.monitoring import drift, metrics
from predictive_scoring.monitoring.log import LogRead
from predictive_scoring.monitoring.outcomes import DUPLICATE, UNKNOWN_LEAD, outcomes
from predictive_scoring.stages import Stage

NAMED = 20
"""Most ids named per problem (all are counted)."""


@dataclass(frozen=True)
class MonitorPlan:
    """What a monitoring run judges, and how.

    Attributes:
        target: The stage the model predicts.
        horizon_days: Within how many days of the score.
        handoff: The rules' stage from which leads go to sales.
        ece_bins: Equal-frequency bins of the ECE.
        period: ``month`` or ``week``.
        since: First moment of the window (None: the log's first).
        until: First moment after it (None: the log's last).
        thresholds: The alert thresholds.
        now: When ages are counted to (the run's moment).
    """

    target: Stage
    horizon_days: float
    handoff: Stage
    ece_bins: int
    period: metrics.Period
    since: pd.Timestamp | None
    until: pd.Timestamp | None
    thresholds: MonitoringConfig
    now: pd.Timestamp


@dataclass(frozen=True)
class Outcomes:
    """What the dataset says happened: its leads, stage changes and last moment."""

    lead_ids: pd.Series
    stage_changes: pd.DataFrame
    data_end: pd.Timestamp


def monitoring_report(log: LogRead, facts: Outcomes,
                      references: Mapping[str, Mapping[str, Any] | None],
                      plan: MonitorPlan) -> tuple[dict[str, Any], pd.DataFrame]:
    """The document and the judged rows (for the plots).

    Args:
        log: The rows read from the prediction log.
        facts: The dataset's outcomes.
        references: ``name/version`` -> its bundle's training reference (None: no
            reference in the bundle); a logged version missing here is unknown.
        plan: Target, horizon, periods, window and thresholds.
    """
    rows = outcomes(log.rows, facts.lead_ids, facts.stage_changes, plan.target,
                    plan.horizon_days, facts.data_end)
    overall = metrics.scored_block(rows, plan.handoff, plan.ece_bins)
    periods, empty = metrics.by_period(rows, plan.period, plan.handoff, plan.ece_bins,
                                       (plan.since, plan.until))
    versions = metrics.by_version(rows, plan.handoff, plan.ece_bins)
    drifts = version_drifts(log, rows, references, plan.now)
    judged = {v: b for v, b in versions.items() if v in references}
    report = {**overall, "by_period": periods, "by_version": versions,
              "stages": metrics.stage_tables(rows), "drift": drifts,
              "alerts": drift.alerts(drifts, judged, plan.thresholds),
              "problems": problems(rows, references, empty, plan.period),
              "settings": settings_block(plan, facts)}
    return report, rows


def version_drifts(log: LogRead, rows: pd.DataFrame,
                   references: Mapping[str, Mapping[str, Any] | None],
                   now: pd.Timestamp) -> dict[str, Any]:
    """:func:`drift.version_drift` of every logged model version (``name/version``)."""
    out = {}
    for name, version in metrics.versions_of(rows):
        key = f"{name}/{version}"
        mine = rows.loc[(rows["model_name"] == name) & (rows["model_version"] == version)]
        counts = {length: c for (n, v, length), c in log.bin_counts.items()
                  if n == name and v == version}
        if key not in references:
            out[key] = {"available": False, "reason": "unknown model version: its bundle "
                        "was not found (pass it with --model)"}
            continue
        out[key] = drift.version_drift(references[key], counts,
                                       mine["probability"].to_numpy(np.float64),
                                       log.without_bins.get((name, version), 0), now)
    return out


def problems(rows: pd.DataFrame, references: Mapping[str, Any], empty_periods: list[str],
             period: str) -> dict[str, Any]:
    """What could not be judged, counted and named: unknown model versions, leads not in
    the dataset, duplicate request ids, empty periods."""
    version = rows["model_name"].astype(str) + "/" + rows["model_version"].astype(str)
    unknown_versions = version.loc[~version.isin(list(references))].value_counts()
    missing = rows.loc[rows["status"] == UNKNOWN_LEAD, "lead_id"]
    duplicates = rows.loc[rows["status"] == DUPLICATE, "request_id"]
    return {
        "unknown_model_versions": {"rows": int(unknown_versions.sum()),
                                   "versions": {str(k): int(n) for k, n
                                                in unknown_versions.items()},
                                   "note": "scores of these versions are judged (outcomes "
                                   "need no bundle); their drift is unavailable"},
        "leads_missing_from_dataset": {"rows": len(missing),
                                       "leads": int(missing.nunique()),
                                       "examples": _named(missing)},
        "duplicate_request_ids": {"rows": len(duplicates),
                                  "examples": _named(duplicates)},
        "empty_periods": {"count": len(empty_periods), "periods": empty_periods,
                          "period": period},
    }


def _named(values: pd.Series) -> list[str]:
    return [str(v) for v in values.drop_duplicates().head(NAMED)]


def settings_block(plan: MonitorPlan, facts: Outcomes) -> dict[str, Any]:
    """What the run used, for the reader to check."""
    return {"target_stage": plan.target.value, "horizon_days": plan.horizon_days,
            "handoff_stage": plan.handoff.value, "ece_bins": plan.ece_bins,
            "period": plan.period,
            "since": None if plan.since is None else plan.since.isoformat(),
            "until": None if plan.until is None else plan.until.isoformat(),
            "data_end": facts.data_end.isoformat(), "run_at": plan.now.isoformat(),
            "thresholds": plan.thresholds.model_dump()}
