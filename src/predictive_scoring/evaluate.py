"""Metrics for comparing lead scorers: learned probabilities and hand-set rule points.

Every function here is pure: arrays in, numbers or small frames out, no I/O. The
standard probability metrics come from scikit-learn; this module adds what it lacks:
binned calibration, tie-aware gain and lift, funnel-stage conversion tables, and the
mapping between rule points, probabilities and stage thresholds.

Inputs are numpy arrays or pandas Series, read by position (a Series' index is
ignored), and must all have the same length. Labels are 0/1 (``1`` = the lead converted).

Ranking metrics are tie-aware. Points-based scores put many leads on the same score,
so "the top 10%" usually cuts through a block of tied leads. Those leads count
proportionally: the result is the expected value under a random order within the
tie, which does not depend on the row order of the input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)

Vector = np.ndarray | pd.Series
BinStrategy = Literal["quantile", "uniform"]

LOG_LOSS_CLIP = 1e-15
"""Probabilities are clipped to ``[LOG_LOSS_CLIP, 1 - LOG_LOSS_CLIP]`` for log loss."""

_SHARE_TOLERANCE = 1e-6


# ------------------------------------------------------------------------ validation
def _same_length(**vectors: Vector) -> None:
    """Raise ValueError unless every vector is one-dimensional, non-empty and equally long."""
    reference, expected = None, None
    for name, vector in vectors.items():
        shape = np.shape(vector)
        if len(shape) != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {shape}")
        if shape[0] == 0:
            raise ValueError(f"{name} is empty: metrics need at least one lead")
        if expected is None:
            reference, expected = name, shape[0]
        elif shape[0] != expected:
            raise ValueError(f"{name} has {shape[0]} rows but {reference} has {expected}; "
                             "pass one value per lead")


def _labels(y: Vector, name: str = "y") -> np.ndarray:
    """The labels as a float array of 0.0 / 1.0, or ValueError naming the first bad value."""
    values = np.asarray(y)
    bad = ~np.isin(values, (0, 1))
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{name} must hold only 0 and 1; found {values[row]!r} at row {row}")
    return values.astype(float)


def _scores(score: Vector, name: str = "score") -> np.ndarray:
    """The scores as a float array, or ValueError naming the first non-finite value."""
    values = np.asarray(score, dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{name} must be finite; found {values[row]} at row {row}")
    return values


def _probabilities(p: Vector, name: str = "p") -> np.ndarray:
    """The probabilities as a float array, or ValueError naming the first outside [0, 1]."""
    values = _scores(p, name)
    bad = (values < 0) | (values > 1)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{name} must lie in [0, 1]; found {values[row]} at row {row}")
    return values


def _fractions(fractions: Sequence[float] | np.ndarray) -> np.ndarray:
    """The fractions of leads as a float array, each in (0, 1]."""
    values = np.atleast_1d(np.asarray(fractions, dtype=float))
    if not ((values > 0) & (values <= 1)).all():
        raise ValueError(f"fractions must each lie in (0, 1]; got {values.tolist()}")
    return values


def _share(part: np.ndarray | float, whole: float) -> np.ndarray | float:
    """``part / whole``, NaN when ``whole`` is zero (e.g. no positives at all)."""
    return part / whole if whole else np.full_like(np.asarray(part, dtype=float), np.nan)


# ----------------------------------------------------------------------- calibration
def _calibration_bins(p: np.ndarray, n_bins: int, strategy: BinStrategy) -> np.ndarray:
    """Bin number of each prediction; tied predictions always land in the same bin."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}")
    if strategy == "quantile":
        ranked = np.sort(p)
        cuts = np.unique(ranked[np.arange(1, n_bins) * len(p) // n_bins])
    elif strategy == "uniform":
        cuts = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    else:
        raise ValueError(f"strategy must be 'quantile' or 'uniform'; got {strategy!r}")
    return np.searchsorted(cuts, p, side="right")


def calibration_table(
    y: Vector, p: Vector, n_bins: int, strategy: BinStrategy = "quantile"
) -> pd.DataFrame:
    """Predicted against observed conversion per probability bin (a reliability diagram).

    Binning: with ``"quantile"`` (equal frequency) the cut points are the predictions at
    ranks ``i * n // n_bins`` (``i = 1 .. n_bins - 1``) and a bin holds the predictions
    from one cut point up to, not including, the next. Each bin then holds about
    ``n / n_bins`` leads; predictions tied at a cut point stay together, so heavily tied
    predictions give fewer, larger bins (a constant predictor gives one bin). With
    ``"uniform"`` the cut points are evenly spaced on [0, 1]. Empty bins are left out.

    Args:
        y: Conversion labels (0/1).
        p: Predicted conversion probabilities.
        n_bins: The most bins to form.
        strategy: ``"quantile"`` (equal frequency) or ``"uniform"`` (equal width).

    Returns:
        Frame indexed by ``bin`` (0, 1, ... in increasing probability) with
        ``lowest_predicted``, ``highest_predicted``, ``mean_predicted``,
        ``observed_rate`` and ``count``.
    """
    _same_length(y=y, p=p)
    labels, probabilities = _labels(y), _probabilities(p)
    leads = pd.DataFrame({"bin": _calibration_bins(probabilities, n_bins, strategy),
                          "p": probabilities, "y": labels})
    table = leads.groupby("bin").agg(
        lowest_predicted=("p", "min"), highest_predicted=("p", "max"),
        mean_predicted=("p", "mean"), observed_rate=("y", "mean"), count=("y", "size"))
    return table.set_axis(pd.RangeIndex(len(table), name="bin"))


def expected_calibration_error(
    y: Vector, p: Vector, n_bins: int, strategy: BinStrategy = "quantile"
) -> float:
    """Expected calibration error: the lead-weighted mean gap between predicted and observed.

    ``ECE = sum_b (n_b / n) * |mean(y in b) - mean(p in b)|`` over the bins of
    :func:`calibration_table` (equal-frequency bins by default; see there for how bins
    are cut and how ties are kept together).

    Args:
        y: Conversion labels (0/1).
        p: Predicted conversion probabilities.
        n_bins: The most bins to form (set it in the config, not here).
        strategy: ``"quantile"`` (equal frequency) or ``"uniform"`` (equal width).

    Returns:
        The ECE, in [0, 1]; 0 means every bin's mean prediction equals its observed rate.
    """
    table = calibration_table(y, p, n_bins, strategy)
    gaps = (table["observed_rate"] - table["mean_predicted"]).abs()
    return float(np.average(gaps, weights=table["count"]))


# ------------------------------------------------------------------ gain and lift
def _cumulative_blocks(y: Vector, score: Vector) -> tuple[np.ndarray, np.ndarray]:
    """Leads and positives above each boundary between tied-score blocks, best score first.

    Both arrays start at 0 and end at the totals. Between two boundaries the expected
    positives under a random order within the tie grow linearly, so interpolating these
    points gives the tie-aware count for any number of top leads.
    """
    _same_length(y=y, score=score)
    labels, scores = _labels(y), _scores(score)
    _, block = np.unique(scores, return_inverse=True)
    leads = np.bincount(block)[::-1]
    positives = np.bincount(block, weights=labels)[::-1]
    return (np.concatenate([[0], np.cumsum(leads)]),
            np.concatenate([[0.0], np.cumsum(positives)]))


def gain_curve(y: Vector, score: Vector) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative gain: share of positives captured against share of leads, best first.

    Points sit at the boundaries between blocks of tied scores; joining them with
    straight lines gives the expected curve under a random order within each tie.

    Args:
        y: Conversion labels (0/1).
        score: Any score where higher means more likely to convert.

    Returns:
        ``(fraction_of_leads, fraction_of_positives)``, both from 0 to 1 (the second
        is all NaN when there are no positives).
    """
    leads, positives = _cumulative_blocks(y, score)
    return leads / leads[-1], _share(positives, positives[-1])


def _expected_positives_in_top(
    y: Vector, score: Vector, volumes: np.ndarray
) -> tuple[np.ndarray, float]:
    """Expected positives among the top ``volumes`` leads (tie-aware), and all positives."""
    leads, positives = _cumulative_blocks(y, score)
    return np.interp(volumes, leads, positives), float(positives[-1])


def gain_at(y: Vector, score: Vector, fractions: Sequence[float] | np.ndarray) -> np.ndarray:
    """Share of all positives among the top ``fraction`` of leads ranked by score.

    The top fraction holds ``fraction * n`` leads (a fractional lead counts in part), and
    a block of tied leads at the cut-off counts proportionally (see the module notes).

    Args:
        y: Conversion labels (0/1).
        score: Any score where higher means more likely to convert.
        fractions: Fractions of leads, each in (0, 1].

    Returns:
        One gain per fraction, in [0, 1]; NaN when there are no positives.
    """
    _same_length(y=y, score=score)
    shares = _fractions(fractions)
    captured, total = _expected_positives_in_top(y, score, shares * len(y))
    return np.asarray(_share(captured, total), dtype=float)


def lift_at(y: Vector, score: Vector, fractions: Sequence[float] | np.ndarray) -> np.ndarray:
    """Gain divided by the fraction of leads: how many times better than random selection.

    Args:
        y: Conversion labels (0/1).
        score: Any score where higher means more likely to convert.
        fractions: Fractions of leads, each in (0, 1].

    Returns:
        One lift per fraction (1.0 = no better than random); NaN when there are no
        positives.
    """
    return gain_at(y, score, fractions) / _fractions(fractions)


def captured_at_volume(y: Vector, score: Vector, volume: int) -> float:
    """Share of all positives among the top ``volume`` leads ranked by score (tie-aware).

    Use it to compare scorers at one hand-off volume, e.g. the number of leads the rules
    put at MQL or beyond (:func:`volume_of_stages`).

    Args:
        y: Conversion labels (0/1).
        score: Any score where higher means more likely to convert.
        volume: Number of leads handed off, from 0 to ``len(y)``.

    Returns:
        The captured share in [0, 1]; NaN when there are no positives.
    """
    _same_length(y=y, score=score)
    if not 0 <= volume <= len(y):
        raise ValueError(f"volume must lie between 0 and the {len(y)} leads; got {volume}")
    captured, total = _expected_positives_in_top(y, score, np.array([volume], dtype=float))
    return float(_share(captured[0], total))


# --------------------------------------------------------------------------- stages
def _stage_names(order: Sequence[str]) -> list[str]:
    """The funnel order as plain strings; ValueError on an empty or repeated order."""
    names = [str(stage) for stage in order]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"order must list each stage once; got {names}")
    return names


def _stage_positions(stages: Vector, order: Sequence[str]) -> np.ndarray:
    """Position of each lead's stage in ``order``; ValueError naming unknown stages."""
    values = np.asarray(stages, dtype=object).astype(str)
    positions = pd.Index(_stage_names(order)).get_indexer(values)
    if (positions < 0).any():
        unknown = sorted(set(values[positions < 0].tolist()))
        raise ValueError(f"stages holds values not in order: {unknown[:5]}; "
                         f"order is {_stage_names(order)}")
    return positions


def stage_conversion(y: Vector, stages: Vector, order: Sequence[str]) -> pd.DataFrame:
    """Leads and conversion per stage, in funnel order.

    Args:
        y: Conversion labels (0/1).
        stages: Each lead's stage (Stage values, as plain strings or Stage members).
        order: The stages in funnel order; every value of ``stages`` must be in it.

    Returns:
        Frame indexed by ``stage`` (``order`` as plain strings) with ``leads``,
        ``share_of_leads``, ``conversion_rate`` (NaN for an empty stage) and
        ``share_of_positives`` (NaN when there are no positives).
    """
    _same_length(y=y, stages=stages)
    labels = _labels(y)
    positions = _stage_positions(stages, order)
    leads = np.bincount(positions, minlength=len(order))
    positives = np.bincount(positions, weights=labels, minlength=len(order))
    return pd.DataFrame(
        {"leads": leads,
         "share_of_leads": leads / len(labels),
         "conversion_rate": np.divide(positives, leads, out=np.full(len(leads), np.nan),
                                      where=leads > 0),
         "share_of_positives": _share(positives, positives.sum())},
        index=pd.Index(_stage_names(order), name="stage"))


def volume_of_stages(stages: Vector, at_or_above: str, order: Sequence[str]) -> int:
    """How many leads sit in stage ``at_or_above`` or any later stage of ``order``.

    Args:
        stages: Each lead's stage.
        at_or_above: The first stage that counts, e.g. ``"mql"`` for the MQL+ volume.
        order: The stages in funnel order.

    Returns:
        The number of leads at or beyond ``at_or_above``.
    """
    names = _stage_names(order)
    if str(at_or_above) not in names:
        raise ValueError(f"at_or_above {str(at_or_above)!r} is not in order {names}")
    _same_length(stages=stages)
    return int((_stage_positions(stages, order) >= names.index(str(at_or_above))).sum())


def stage_crosstab(y: Vector, rule_stages: Vector, model_stages: Vector,
                   order: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rule stage against suggested stage: how many leads, and how they converted.

    Args:
        y: Conversion labels (0/1).
        rule_stages: Each lead's stage from the rules' points.
        model_stages: Each lead's stage suggested by the model.
        order: The stages in funnel order.

    Returns:
        ``(leads, conversion_rate)``, both indexed by rule stage (rows) and suggested
        stage (columns) in funnel order; a conversion rate is NaN for an empty cell.
    """
    _same_length(y=y, rule_stages=rule_stages, model_stages=model_stages)
    labels = _labels(y)
    names = _stage_names(order)
    cell = (_stage_positions(rule_stages, order) * len(names)
            + _stage_positions(model_stages, order))
    size = len(names) ** 2
    leads = np.bincount(cell, minlength=size).reshape(len(names), len(names))
    positives = np.bincount(cell, weights=labels, minlength=size).reshape(leads.shape)
    rate = np.divide(positives, leads, out=np.full(leads.shape, np.nan), where=leads > 0)
    rows = pd.Index(names, name="rule_stage")
    columns = pd.Index(names, name="suggested_stage")
    return (pd.DataFrame(leads, index=rows, columns=columns),
            pd.DataFrame(rate, index=rows, columns=columns))


def stage_moves(y: Vector, rule_stages: Vector, model_stages: Vector,
                order: Sequence[str]) -> pd.DataFrame:
    """Leads the model moves up, keeps, or moves down from their rule stage, and how each
    group really converted.

    Returns:
        Frame indexed by ``move`` (``up``, ``same``, ``down``) with ``leads``,
        ``share_of_leads`` and ``conversion_rate`` (NaN for an empty group).
    """
    _same_length(y=y, rule_stages=rule_stages, model_stages=model_stages)
    labels = _labels(y)
    step = _stage_positions(model_stages, order) - _stage_positions(rule_stages, order)
    groups = {"up": step > 0, "same": step == 0, "down": step < 0}
    leads = np.array([int(chosen.sum()) for chosen in groups.values()])
    converted = np.array([labels[chosen].sum() for chosen in groups.values()])
    return pd.DataFrame(
        {"leads": leads, "share_of_leads": leads / len(labels),
         "conversion_rate": np.divide(converted, leads, out=np.full(3, np.nan),
                                      where=leads > 0)},
        index=pd.Index(list(groups), name="move"))


# ------------------------------------------------------------ probability metrics
def probability_metrics(y: Vector, p: Vector, volume: int, ece_bins: int) -> dict[str, float]:
    """The per-scorer block of ``metrics.json``: discrimination, calibration and gain.

    Args:
        y: Conversion labels (0/1) of the test leads.
        p: Predicted conversion probabilities (for rules: :func:`isotonic_points_to_probability`).
        volume: The hand-off volume to compare at (the rules' MQL+ count on these leads).
        ece_bins: Equal-frequency bins for the ECE.

    Returns:
        ``roc_auc``, ``pr_auc`` (average precision; both NaN when ``y`` holds one class),
        ``log_loss`` (on ``p`` clipped to ``[1e-15, 1 - 1e-15]``), ``brier``, ``ece``,
        ``gain_at_5/10/20``, ``lift_at_5/10/20`` (top 5/10/20% of leads) and
        ``captured_at_rules_volume`` (:func:`captured_at_volume` at ``volume``).
    """
    _same_length(y=y, p=p)
    labels, probabilities = _labels(y), _probabilities(p)
    both_classes = np.unique(labels).size == 2
    gains = gain_at(labels, probabilities, [0.05, 0.10, 0.20])
    return {
        "roc_auc": float(roc_auc_score(labels, probabilities)) if both_classes else np.nan,
        "pr_auc": (float(average_precision_score(labels, probabilities)) if both_classes
                   else np.nan),
        "log_loss": float(log_loss(labels, np.clip(probabilities, LOG_LOSS_CLIP,
                                                   1 - LOG_LOSS_CLIP), labels=[0, 1])),
        "brier": float(brier_score_loss(labels, probabilities, labels=[0, 1])),
        "ece": expected_calibration_error(labels, probabilities, ece_bins),
        "lift_at_10": float(gains[1] / 0.10),
        "captured_at_rules_volume": captured_at_volume(labels, probabilities, volume),
        "gain_at_5": float(gains[0]), "gain_at_10": float(gains[1]),
        "gain_at_20": float(gains[2]),
        "lift_at_5": float(gains[0] / 0.05), "lift_at_20": float(gains[2] / 0.20),
    }


def ranking_table(y: Vector, scores: Mapping[str, Vector], volume: int) -> pd.DataFrame:
    """Ranking quality of several scorers on the same leads, one row per scorer.

    Only the order matters, so points tables and probabilities compare directly.

    Args:
        y: Conversion labels (0/1).
        scores: Score per lead by scorer name (higher = more likely to convert).
        volume: Hand-off volume for ``captured_at_volume`` (e.g. the rules' MQL+ count).

    Returns:
        Frame indexed by ``scorer`` with ``roc_auc``, ``pr_auc`` (NaN with one class),
        ``gain_at_10`` and ``captured_at_volume``.
    """
    labels = _labels(y)
    both_classes = np.unique(labels).size == 2
    rows = {}
    for name, score in scores.items():
        _same_length(y=y, **{name: score})
        values = _scores(score, name)
        rows[name] = {
            "roc_auc": float(roc_auc_score(labels, values)) if both_classes else np.nan,
            "pr_auc": (float(average_precision_score(labels, values)) if both_classes
                       else np.nan),
            "gain_at_10": float(gain_at(labels, values, [0.10])[0]),
            "captured_at_volume": captured_at_volume(labels, values, volume),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("scorer")


def isotonic_points_to_probability(
    points_train: Vector, y_train: Vector
) -> Callable[[Vector], np.ndarray]:
    """Fit a monotone map from rule points to conversion probability on training leads.

    More points never means a lower probability; points outside the training range get
    the probability of the nearest end. The rules' points can then be scored with
    :func:`probability_metrics` on the same test leads as the model.

    Args:
        points_train: Rule points of the training leads.
        y_train: Their conversion labels (0/1).

    Returns:
        The fitted ``IsotonicRegression.predict`` (its estimator is ``.__self__``):
        points in, probabilities out.
    """
    _same_length(points_train=points_train, y_train=y_train)
    points, labels = _scores(points_train, "points_train"), _labels(y_train, "y_train")
    model = IsotonicRegression(increasing=True, out_of_bounds="clip")
    return model.fit(points, labels).predict


# ------------------------------------------------------------- stage thresholds
def _stage_share_vector(stage_shares: Mapping[str, float], names: list[str]) -> np.ndarray:
    """Shares in funnel order (missing stages 0); ValueError unless they form a distribution."""
    given = {str(stage): float(share) for stage, share in stage_shares.items()}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(f"stage_shares names stages not in order: {unknown}")
    shares = np.array([given.get(name, 0.0) for name in names])
    if (shares < 0).any() or abs(shares.sum() - 1) > _SHARE_TOLERANCE:
        raise ValueError(f"stage_shares must be non-negative and sum to 1; got {given}")
    return shares


def _nearest_cut_levels(p: np.ndarray, shares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate cuts, and for each stage after the first the index of its cut.

    The cuts are the distinct probabilities, increasing, then one value above them all
    (for stages that end up empty at the top). A stage takes the cut whose count of
    leads at or above it is nearest to the stage's target count; on a tie, the larger
    count. Targets do not increase along the funnel, so neither do the counts.
    """
    distinct = np.unique(p)
    ceiling = 1.0 if distinct[-1] < 1.0 else distinct[-1] + 1.0
    cuts = np.append(distinct, ceiling)
    at_or_above = len(p) - np.searchsorted(np.sort(p), cuts, side="left")
    targets = len(p) * np.cumsum(shares[::-1])[::-1][1:]
    levels = np.abs(at_or_above[None, :] - targets[:, None]).argmin(axis=1)
    return cuts, levels


def _thresholds_from_levels(cuts: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Strictly increasing thresholds for all stages from the cut index of each later stage.

    Of the stages sharing a cut, the last gets the cut itself and the others, empty,
    get evenly spaced values in the gap between the cut and the one below it. The first
    stage gets the bottom of the lowest gap: 0, or -1 when some lead has probability 0
    and the first stage must stay empty.
    """
    floor = -1.0 if cuts[0] == 0 and levels.size and levels[0] == 0 else 0.0
    gap_bottom = np.concatenate([[floor], cuts[:-1]])[levels]
    first = np.searchsorted(levels, levels, side="left")
    group_size = np.searchsorted(levels, levels, side="right") - first
    rank_in_group = np.arange(len(levels)) - first + 1
    spread = gap_bottom + (cuts[levels] - gap_bottom) * rank_in_group / group_size
    return np.concatenate([[floor], np.where(rank_in_group == group_size, cuts[levels], spread)])


def stage_thresholds_matching_shares(
    p_train: Vector, stage_shares: Mapping[str, float], order: Sequence[str]
) -> dict[str, float]:
    """Probability thresholds that split the leads into stages with the given shares.

    Use it to give the model the same funnel shape as the rules: pass the share of the
    training leads the rules put in each stage, and map probabilities onto stages with
    :func:`predictive_scoring.stages.stage_for_values`. On the training probabilities
    each stage then holds its share to within one lead when the probabilities are
    distinct. Leads tied on one probability always share a stage, so a tie at a
    boundary goes wholly to the side that lands nearer the target count (the stage
    above on an exact tie). A stage left empty (share 0, or squeezed out by rounding or
    a tie) still gets a threshold of its own, strictly between its neighbours', so the
    thresholds always increase strictly; an empty top stage gets a threshold above every
    training probability (1.0, or 2.0 when some lead has probability 1).

    Args:
        p_train: Predicted probabilities of the training leads.
        stage_shares: Share of leads per stage (missing stages count as 0); the shares
            must sum to 1.
        order: The stages in funnel order (e.g. ``FUNNEL``).

    Returns:
        The minimum probability of each stage, keyed by the items of ``order`` as given
        (so ``order=FUNNEL`` gives :class:`Stage` keys, as ``stage_for_values`` needs).
        The first stage's threshold is a floor (0.0 unless that stage must stay empty):
        every lead below the next threshold lands there.
    """
    names = _stage_names(order)
    shares = _stage_share_vector(stage_shares, names)
    _same_length(p_train=p_train)
    cuts, levels = _nearest_cut_levels(_probabilities(p_train, "p_train"), shares)
    thresholds = _thresholds_from_levels(cuts, levels)
    return {stage: float(bar) for stage, bar in zip(order, thresholds, strict=True)}


# ------------------------------------------------------------------ lead age
AGE_BANDS: tuple[tuple[int, int | None], ...] = ((0, 7), (8, 30), (31, 90), (91, 180),
                                                 (181, None))
"""Lead-age bands in whole days (inclusive; the last has no upper end)."""


def age_band_names() -> list[str]:
    """``0-7``, ``8-30``, ``31-90``, ``91-180``, ``181+``."""
    return [f"{low}+" if high is None else f"{low}-{high}" for low, high in AGE_BANDS]


def age_band_of(age_days: Vector) -> np.ndarray:
    """The band (position in :data:`AGE_BANDS`) of each age, read in whole days (floor)."""
    days = np.floor(np.asarray(age_days, dtype=np.float64))
    uppers = np.array([high for _, high in AGE_BANDS[:-1]], dtype=np.float64)
    return np.searchsorted(uppers, days, side="left")


def by_age(y: Vector, p: Vector, points: Vector, age_days: Vector,
           ece_bins: int) -> list[dict[str, object]]:
    """The model and the points per lead-age band, on the same rows.

    Args:
        y: Conversion labels (0/1).
        p: The model's calibrated probabilities.
        points: The rules' points (their ranking is what ROC-AUC reads).
        age_days: Each row's lead age at its ``as_of``, in days.
        ece_bins: Equal-frequency bins for the ECE.

    Returns:
        One entry per band of :data:`AGE_BANDS`, in order: ``band``, ``n``,
        ``positives``, ``model_roc_auc``, ``rules_roc_auc`` (None unless the band holds
        both classes), ``ece`` (the model's; None for an empty band).
    """
    _same_length(y=y, p=p, points=points, age_days=age_days)
    labels, probabilities = _labels(y), _probabilities(p)
    scores = _scores(points, "points")
    band = age_band_of(age_days)
    entries = []
    for index, name in enumerate(age_band_names()):
        rows = band == index
        held = labels[rows]
        both = np.unique(held).size == 2
        entries.append({
            "band": name, "n": int(rows.sum()), "positives": int(held.sum()),
            "model_roc_auc": float(roc_auc_score(held, probabilities[rows])) if both else None,
            "rules_roc_auc": float(roc_auc_score(held, scores[rows])) if both else None,
            "ece": (expected_calibration_error(held, probabilities[rows], ece_bins)
                    if rows.any() else None)})
    return entries
