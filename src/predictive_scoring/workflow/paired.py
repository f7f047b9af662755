"""A paired comparison of scorers on the same leads: a bootstrap over leads, vectorised.

Every scorer is measured on the same resamples: leads are drawn with replacement (a lead
may have several snapshots, so resampling rows would understate the noise), each drawn
lead brings all of its rows, and a resample becomes a weight per row (how often its lead
was drawn). The metrics are computed for a block of resamples at once from one sort of
each scorer's values, so 1,000 resamples of 40,000 rows take well under a second.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

RESAMPLES = 1_000
LEVEL = 0.95
BLOCK_CELLS = 4_000_000
"""Row weights held at a time (resamples x rows): bounds the memory to about 16 MB.
Weights are float32: counts of a few leads are exact, and the metrics' sums keep about
seven digits, far below the bootstrap's own noise."""

WeightedMetric = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None],
                          np.ndarray]
"""(scores (n,), labels (n,), weights (b, k), codes (n,) or None) -> the metric under each
of b weightings; row i weighs ``weights[:, codes[i]]`` (``weights[:, i]`` without codes)."""


def _row_weights(weights: np.ndarray, codes: np.ndarray | None,
                 order: np.ndarray) -> np.ndarray:
    """The weights of the rows in ``order`` (one gather, straight from the lead counts)."""
    return weights[:, order if codes is None else codes[order]]


def _groups(scores: np.ndarray, descending: bool) -> tuple[np.ndarray, np.ndarray]:
    """The order that sorts the scores, and where each run of tied scores starts."""
    order = np.argsort(-scores if descending else scores, kind="stable")
    ranked = scores[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    return order, starts


def weighted_roc_auc(scores: np.ndarray, y: np.ndarray, weights: np.ndarray,
                     codes: np.ndarray | None = None) -> np.ndarray:
    """ROC-AUC under each row of ``weights`` (ties count one half), as
    ``sklearn.metrics.roc_auc_score(y, scores, sample_weight=w)``; NaN without both
    classes."""
    order, starts = _groups(scores, descending=False)
    w, positive = _row_weights(weights, codes, order), y[order].astype(bool)
    pos = np.add.reduceat(np.where(positive, w, 0.0), starts, axis=1)
    neg = np.add.reduceat(np.where(positive, 0.0, w), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    won = (pos * (below + 0.5 * neg)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, won / pairs, np.nan)


def weighted_average_precision(scores: np.ndarray, y: np.ndarray, weights: np.ndarray,
                               codes: np.ndarray | None = None) -> np.ndarray:
    """Average precision (the PR-AUC of ``metrics.json``) under each row of ``weights``,
    as ``sklearn.metrics.average_precision_score(y, scores, sample_weight=w)``."""
    order, starts = _groups(scores, descending=True)
    w, positive = _row_weights(weights, codes, order), y[order].astype(bool)
    pos = np.add.reduceat(np.where(positive, w, 0.0), starts, axis=1)
    taken = np.add.reduceat(w, starts, axis=1)
    caught, handed = np.cumsum(pos, axis=1), np.cumsum(taken, axis=1)
    total = pos.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(handed > 0, caught / handed, 0.0)
        return np.where(total > 0, (pos * precision).sum(axis=1) / total, np.nan)


METRICS: dict[str, WeightedMetric] = {"roc_auc": weighted_roc_auc,
                                      "pr_auc": weighted_average_precision}
"""The metrics a promotion can be decided on (both rank leads: higher is better), named
as in ``metrics.json``."""


def metric_function(name: str) -> WeightedMetric:
    """The weighted form of a metric.

    Raises:
        ValueError: A metric a promotion cannot be decided on, naming those it can.
    """
    if name not in METRICS:
        raise ValueError(f"training.promotion_metric is '{name}', but promotion compares "
                         f"scorers on the same leads by {' or '.join(METRICS)} (metrics "
                         "that rank leads, so the points can be measured too); set one of "
                         "them in the base config")
    return METRICS[name]


def metric_value(name: str, scores: np.ndarray, y: np.ndarray) -> float:
    """A metric on every row once (no resampling)."""
    return float(metric_function(name)(np.asarray(scores, float), np.asarray(y),
                                       np.ones((1, len(y))), None)[0])


def lead_resamples(n_rows: int, n_leads: int, resamples: int,
                   seed: int) -> Iterator[np.ndarray]:
    """Blocks of lead counts, one row per resample: how often each lead was drawn when
    ``n_leads`` leads are drawn with replacement (a row weighs its lead's count).

    Args:
        n_rows: Rows of those leads (they bound the block size).
        n_leads: Distinct leads.
        resamples: Resamples in all.
        seed: Seed of the draws (the same seed gives the same resamples).
    """
    rng = np.random.default_rng(seed)
    block = max(1, min(resamples, BLOCK_CELLS // max(n_rows, n_leads, 1)))
    done = 0
    while done < resamples:
        size = min(block, resamples - done)
        drawn = rng.integers(0, n_leads, size=(size, n_leads))
        flat = (drawn + (np.arange(size) * n_leads)[:, None]).ravel()
        counts = np.bincount(flat, minlength=size * n_leads).reshape(size, n_leads)
        yield counts.astype(np.float32)
        done += size


@dataclass(frozen=True)
class PairedResult:
    """Scorers measured on the same leads and the bootstrap of their differences.

    Attributes:
        metric: The metric's name.
        n_leads: Distinct leads.
        n_rows: Rows (snapshots) of those leads.
        values: Each scorer's metric on all the rows.
        differences: Per ``(a, b)`` pair asked for, the metric of ``a`` minus that of
            ``b`` under every resample (NaN where a resample lacks a class).
        level: The intervals' coverage.
    """

    metric: str
    n_leads: int
    n_rows: int
    values: dict[str, float]
    differences: dict[tuple[str, str], np.ndarray]
    level: float

    def interval(self, a: str, b: str) -> tuple[float, float]:
        """The percentile interval of ``a`` minus ``b`` at :attr:`level`."""
        found = self.differences[(a, b)]
        found = found[~np.isnan(found)]
        tail = (1 - self.level) / 2
        low, high = np.quantile(found, [tail, 1 - tail])
        return float(low), float(high)


def paired_bootstrap(y: np.ndarray, lead_id: pd.Series | np.ndarray,
                     scores: Mapping[str, np.ndarray], pairs: list[tuple[str, str]],
                     metric: str, resamples: int = RESAMPLES, seed: int = 0,
                     level: float = LEVEL) -> PairedResult:
    """Measure scorers on the same rows and bootstrap the differences of some pairs.

    Args:
        y: 0/1 outcome per row.
        lead_id: The lead of each row (rows of one lead are drawn together).
        scores: Scorer name -> its value per row (higher: more likely to convert).
        pairs: ``(a, b)`` pairs whose difference ``a - b`` is bootstrapped.
        metric: A name of :data:`METRICS`.
        resamples: Bootstrap resamples.
        seed: Seed of the resamples.
        level: Coverage of the intervals.

    Raises:
        ValueError: An unknown metric, or rows of one class only (nothing to rank).
    """
    function = metric_function(metric)
    y = np.asarray(y).astype(np.int8)
    if np.unique(y).size < 2:
        raise ValueError(f"the {len(y):,} compared rows hold "
                         f"{'no converters' if y.sum() == 0 else 'only converters'}, so "
                         f"{metric} is undefined and no scorer can be compared")
    codes, leads = pd.factorize(pd.Series(np.asarray(lead_id, dtype=object)))
    values = {name: metric_value(metric, s, y) for name, s in scores.items()}
    parts: dict[tuple[str, str], list[np.ndarray]] = {pair: [] for pair in pairs}
    names = sorted({name for pair in pairs for name in pair})
    arrays = {name: np.asarray(scores[name], float) for name in names}
    for counts in lead_resamples(len(y), len(leads), resamples, seed):
        measured = {name: function(arrays[name], y, counts, codes) for name in names}
        for a, b in pairs:
            parts[(a, b)].append(measured[a] - measured[b])
    return PairedResult(metric, len(leads), len(y), values,
                        {pair: np.concatenate(found) for pair, found in parts.items()}, level)
