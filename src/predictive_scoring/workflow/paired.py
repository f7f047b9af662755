"""A paired comparison of scorers on the same leads: a bootstrap over leads, vectorised.

Every scorer is measured on the same resamples: leads are drawn with replacement (a lead
may have several snapshots, so resampling rows would understate the noise), each drawn
lead brings all of its rows, and a resample becomes a weight per lead (how often it was
drawn). Each scorer's values are sorted once into groups of tied scores; a block of
resamples then becomes the converted and not converted weight per group by one sparse
product, and the metric follows from cumulative sums.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

RESAMPLES = 1_000
LEVEL = 0.95
BLOCK_CELLS = 4_000_000
"""Row weights held at a time (resamples x rows): bounds the memory to about 16 MB.
Weights are float32: counts of a few leads are exact, and the metrics' sums keep about
seven digits, far below the bootstrap's own noise."""

@dataclass(frozen=True)
class Ranked:
    """One scorer's ranking of the rows, ready to be measured under many weightings.

    Rows of tied scores form one group; ``positive`` (``negative``) sums, per group, the
    weights of its converted (not converted) rows: a sparse ``(groups, carriers)`` matrix
    where a row's weight is its carrier's (its lead's, or its own).

    Attributes:
        positive: Groups x carriers, 1 where a converted row of the carrier is in the group.
        negative: The same for the rows that did not convert.
    """

    positive: sparse.csr_matrix
    negative: sparse.csr_matrix


def ranked(scores: np.ndarray, y: np.ndarray, codes: np.ndarray | None, n_carriers: int,
           descending: bool) -> Ranked:
    """Group the rows by tied score in rank order (ascending, or descending).

    Args:
        scores: The scorer's value per row.
        y: 0/1 outcome per row.
        codes: Each row's weight carrier (its lead, 0..n_carriers-1); None: the row itself.
        n_carriers: Number of carriers.
        descending: Rank the highest score first.
    """
    scores = np.asarray(scores, float)
    order = np.argsort(-scores if descending else scores, kind="stable")
    in_order = scores[order]
    starts = np.r_[True, in_order[1:] != in_order[:-1]]
    group = np.empty(len(scores), np.int64)
    group[order] = np.cumsum(starts) - 1
    carrier = np.arange(len(scores)) if codes is None else np.asarray(codes)
    positive = np.asarray(y).astype(bool)
    shape = (int(starts.sum()), n_carriers)

    def matrix(rows: np.ndarray) -> sparse.csr_matrix:
        return sparse.csr_matrix((np.ones(int(rows.sum()), np.float32),
                                  (group[rows], carrier[rows])), shape=shape)

    return Ranked(matrix(positive), matrix(~positive))


def _sums(ranking: Ranked, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group (rows) and weighting (columns): converted and not converted weight."""
    across = np.ascontiguousarray(weights.T)
    return ranking.positive @ across, ranking.negative @ across


def roc_auc_of(ranking: Ranked, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC under each row of ``weights`` (carriers' weights), ties counting one half;
    NaN without both classes. ``ranking`` ascending."""
    pos, neg = _sums(ranking, weights)
    below = np.cumsum(neg, axis=0) - neg
    pairs = pos.sum(axis=0, dtype=np.float64) * neg.sum(axis=0, dtype=np.float64)
    won = (pos * (below + 0.5 * neg)).sum(axis=0, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, won / pairs, np.nan)


def average_precision_of(ranking: Ranked, weights: np.ndarray) -> np.ndarray:
    """Average precision under each row of ``weights``. ``ranking`` descending."""
    pos, neg = _sums(ranking, weights)
    caught, handed = np.cumsum(pos, axis=0), np.cumsum(pos + neg, axis=0)
    total = pos.sum(axis=0, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(handed > 0, caught / handed, 0.0)
        return np.where(total > 0, (pos * precision).sum(axis=0, dtype=np.float64) / total,
                        np.nan)


@dataclass(frozen=True)
class Metric:
    """A metric measured from a ranking: its rank direction and its function."""

    descending: bool
    of: Callable[[Ranked, np.ndarray], np.ndarray]


METRICS: dict[str, Metric] = {"roc_auc": Metric(False, roc_auc_of),
                              "pr_auc": Metric(True, average_precision_of)}
"""The metrics a promotion can be decided on (both rank leads: higher is better), named
as in ``metrics.json``."""


def weighted_roc_auc(scores: np.ndarray, y: np.ndarray, weights: np.ndarray,
                     codes: np.ndarray | None = None) -> np.ndarray:
    """ROC-AUC under each row of ``weights`` (per row, or per carrier with ``codes``), as
    ``sklearn.metrics.roc_auc_score(y, scores, sample_weight=w)``."""
    return roc_auc_of(ranked(scores, y, codes, weights.shape[1], False), weights)


def weighted_average_precision(scores: np.ndarray, y: np.ndarray, weights: np.ndarray,
                               codes: np.ndarray | None = None) -> np.ndarray:
    """Average precision (the PR-AUC of ``metrics.json``) under each row of ``weights``,
    as ``sklearn.metrics.average_precision_score(y, scores, sample_weight=w)``."""
    return average_precision_of(ranked(scores, y, codes, weights.shape[1], True), weights)


def metric_function(name: str) -> Metric:
    """A metric by name.

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
    metric = metric_function(name)
    return float(metric.of(ranked(scores, y, None, len(y), metric.descending),
                           np.ones((1, len(y)), np.float32))[0])


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
    measure = metric_function(metric)
    y = np.asarray(y).astype(np.int8)
    if np.unique(y).size < 2:
        raise ValueError(f"the {len(y):,} compared rows hold "
                         f"{'no converters' if y.sum() == 0 else 'only converters'}, so "
                         f"{metric} is undefined and no scorer can be compared")
    codes, leads = pd.factorize(pd.Series(np.asarray(lead_id, dtype=object)))
    values = {name: metric_value(metric, s, y) for name, s in scores.items()}
    parts: dict[tuple[str, str], list[np.ndarray]] = {pair: [] for pair in pairs}
    names = sorted({name for pair in pairs for name in pair})
    rankings = {name: ranked(scores[name], y, codes, len(leads), measure.descending)
                for name in names}
    for counts in lead_resamples(len(y), len(leads), resamples, seed):
        measured = {name: measure.of(rankings[name], counts) for name in names}
        for a, b in pairs:
            parts[(a, b)].append(measured[a] - measured[b])
    return PairedResult(metric, len(leads), len(y), values,
                        {pair: np.concatenate(found) for pair, found in parts.items()}, level)
