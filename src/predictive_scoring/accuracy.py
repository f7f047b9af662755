"""The accuracy page: each scorer at a threshold, as sales leaders read a scoring tool.

Ranking metrics (ROC-AUC, lift) say how well a scorer orders leads; a sales leader asks
what happens at a threshold: of the leads handed over, how many convert (precision), how
many of the converters are handed over (recall), F1, the confusion matrix, and how many
converters a week that brings. Two thresholds are compared, for every scorer on the same
test leads:

- the points' **hand-off volume**: as many leads as the hand-set points hand to sales
  (their hand-off stage and later), so the scorers compare at today's workload;
- the **sales capacity**: the leads sales can take per week (times the weeks the test
  leads span), or a share of the leads.

A scorer hands over the leads at or above its threshold: the score of the lead at that
volume, moved to the nearest edge of a block of tied scores (points tie a lot), so the
count handed over is the nearest a real threshold can get; on an exact tie, the smaller.

The **backtest** replays the last quarter (13 weeks) of test leads week by week: each week
sales takes its capacity's best leads of that week by each scorer; it counts leads handed
over and converters reached (a tie at a week's cut counts in proportion: the expected
count under a random order within the tie).

Every function is pure: arrays in, JSON-ready dicts out (``metrics.json``'s
``accuracy_page`` block).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from predictive_scoring import evaluate
from predictive_scoring.config import Capacity

WEEK = pd.Timedelta(days=7)
QUARTER_WEEKS = 13


def weeks_spanned(times: pd.Series | None) -> float | None:
    """Weeks between the first and last time (at least one); None without times."""
    if times is None or times.isna().all():
        return None
    span = times.max() - times.min()
    return max(span / WEEK, 1.0)


def capacity_volume(capacity: Capacity, n_leads: int, weeks: float | None) -> int | None:
    """Leads sales takes out of ``n_leads`` spanning ``weeks``: the share of them, or the
    capacity per week times the weeks (at most all); None for a weekly capacity when the
    leads have no time."""
    if capacity.share is not None:
        return min(n_leads, round(capacity.share * n_leads))
    if weeks is None:
        return None
    return min(n_leads, round(capacity.per_week * weeks))


def threshold_at_volume(score: np.ndarray, volume: int) -> tuple[float, int]:
    """The threshold handing over the count of leads nearest ``volume`` (leads tied on a
    score go together; on a tie of distances, the smaller count).

    Returns:
        The threshold (a lead is handed over when its score is at or above it; ``inf``
        hands over none) and how many leads it hands over.
    """
    distinct, counts = np.unique(np.asarray(score, dtype=float), return_counts=True)
    at_or_above = np.cumsum(counts[::-1])[::-1]  # leads at or above each distinct score
    cuts = np.append(at_or_above, 0)
    bars = np.append(distinct, np.inf)
    best = int(np.argmin(np.abs(cuts - volume) * 2 + (cuts > volume)))
    return float(bars[best]), int(cuts[best])


def confusion(y: np.ndarray, handed: np.ndarray) -> dict[str, float]:
    """Confusion matrix and the rates of one selection of leads.

    Args:
        y: Outcomes (0/1).
        handed: Whether each lead is handed to sales.

    Returns:
        ``handed_over``, ``true_positives`` (handed over, converted), ``false_positives``,
        ``false_negatives`` (converted, not handed over), ``true_negatives``,
        ``precision``, ``recall``, ``f1`` and ``accuracy`` (NaN where undefined).
    """
    converted = np.asarray(y) == 1
    tp = int((handed & converted).sum())
    fp = int((handed & ~converted).sum())
    fn = int((~handed & converted).sum())
    tn = int((~handed & ~converted).sum())
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return {"handed_over": tp + fp, "true_positives": tp, "false_positives": fp,
            "false_negatives": fn, "true_negatives": tn, "precision": precision,
            "recall": recall, "f1": f1, "accuracy": (tp + tn) / len(converted)}


def at_volume(y: np.ndarray, scores: Mapping[str, np.ndarray], volume: int,
              weeks: float | None) -> dict[str, dict[str, float]]:
    """Each scorer's threshold at ``volume`` and its confusion matrix and rates there.

    Returns:
        Scorer -> :func:`confusion` plus ``threshold`` (None when no lead is handed
        over) and, when the leads span weeks,
        ``handed_over_per_week`` and ``expected_converters_per_week`` (the converters
        among the handed-over test leads, per week).
    """
    block = {}
    for name, score in scores.items():
        threshold, _ = threshold_at_volume(score, volume)
        row = {"threshold": threshold if np.isfinite(threshold) else None,
               **confusion(y, np.asarray(score) >= threshold)}
        if weeks is not None:
            row["handed_over_per_week"] = row["handed_over"] / weeks
            row["expected_converters_per_week"] = row["true_positives"] / weeks
        block[name] = row
    return block


def backtest(y: np.ndarray, scores: Mapping[str, np.ndarray], times: pd.Series | None,
             capacity: Capacity, weeks: int = QUARTER_WEEKS) -> dict[str, Any] | None:
    """The last ``weeks`` weeks of test leads replayed at the capacity, week by week.

    Args:
        y: Outcomes of the test leads.
        scores: Scorer -> score per test lead (higher = handed over first).
        times: When each test lead was scored (tz-aware); None: no backtest.
        capacity: Leads sales takes per week, or the share of each week's leads.
        weeks: Weeks replayed (the test leads' span, when shorter).

    Returns:
        ``start``, ``end``, ``weeks``, ``leads``, ``converters``, ``handed_over``,
        per scorer ``converters_reached`` and ``share_of_converters``, and ``weekly``:
        per week its ``week_start``, ``leads``, ``converters``, ``handed_over`` and each
        scorer's ``reached``. None without times.
    """
    if times is None or times.isna().all():
        return None
    moments = pd.to_datetime(times).reset_index(drop=True)
    end = moments.max()
    whole_weeks = min(weeks, int((end - moments.min()) // WEEK))
    if whole_weeks == 0:  # less than a week of leads: one week holding them all
        start, inside = moments.min(), np.ones(len(moments), dtype=bool)
        week = np.zeros(len(moments), dtype=int)
    else:  # whole weeks ending at the last lead: (end - 7 d, end] is the last one
        start = end - whole_weeks * WEEK
        inside = (moments > start).to_numpy()
        week = np.minimum(((moments[inside] - start) / WEEK).to_numpy(), whole_weeks)
        week = np.ceil(week).astype(int) - 1
    labels = np.asarray(y)[inside]
    weekly = []
    for k in range(max(whole_weeks, 1)):
        rows = week == k
        weekly.append(_week(k, start, labels[rows], {n: np.asarray(s)[inside][rows]
                                                    for n, s in scores.items()}, capacity))
    converters = int(labels.sum())
    reached = {n: sum(w["reached"][n] for w in weekly) for n in scores}
    return {"start": start.isoformat(), "end": end.isoformat(), "weeks": len(weekly),
            "leads": int(inside.sum()), "converters": converters,
            "handed_over": int(sum(w["handed_over"] for w in weekly)),
            "scorers": {n: {"converters_reached": reached[n],
                            "share_of_converters": reached[n] / converters if converters
                            else float("nan")} for n in scores},
            "weekly": weekly}


def _week(k: int, start: pd.Timestamp, y: np.ndarray, scores: Mapping[str, np.ndarray],
          capacity: Capacity) -> dict[str, Any]:
    taken = min(len(y), round(capacity.per_week if capacity.per_week is not None
                              else capacity.share * len(y)))
    converters = int(y.sum())
    reached = {name: (converters * evaluate.captured_at_volume(y, score, taken)
                      if converters and taken else 0.0) for name, score in scores.items()}
    return {"week_start": (start + k * WEEK).isoformat(), "leads": len(y),
            "converters": converters, "handed_over": taken, "reached": reached}


def accuracy_page(y: np.ndarray, scores: Mapping[str, np.ndarray], times: pd.Series | None,
                  handoff_volume: int, handoff: str, capacity: Capacity) -> dict[str, Any]:
    """``metrics.json``'s ``accuracy_page`` block.

    Args:
        y: Outcomes of the test leads.
        scores: Scorer -> score per test lead, the same leads for every scorer.
        times: When each test lead was scored, or None (a table without time).
        handoff_volume: Test leads the hand-set points hand to sales.
        handoff: The hand-off stage's name.
        capacity: What sales can take.

    Returns:
        ``test_leads``, ``converters``, ``weeks`` (None without times), ``thresholds``:
        ``handoff_volume`` and ``capacity`` (each with its ``volume``, ``reading`` and
        ``scorers``; the capacity's is None when a weekly capacity meets leads without
        time, with the reason in ``note``), and the ``backtest`` (None without times).
    """
    weeks = weeks_spanned(times)
    n = len(y)
    volume = capacity_volume(capacity, n, weeks)
    points = {"handoff_volume": {
        "volume": handoff_volume,
        "reading": f"as many leads as the hand-set points hand over ({handoff} and later)",
        "scorers": at_volume(y, scores, handoff_volume, weeks)}}
    points["capacity"] = None if volume is None else {
        "volume": volume, "reading": f"sales capacity: {capacity}",
        "scorers": at_volume(y, scores, volume, weeks)}
    page = {"test_leads": n, "converters": int(np.sum(y)), "weeks": weeks,
            "capacity": str(capacity), "thresholds": points,
            "backtest": backtest(y, scores, times, capacity)}
    if volume is None:
        page["note"] = (f"the test leads have no time, so a capacity of {capacity} cannot "
                        "be placed; give it as a share (e.g. --capacity 10%)")
    elif times is None:
        page["note"] = "the test leads have no time: no per-week figures and no backtest"
    return page
