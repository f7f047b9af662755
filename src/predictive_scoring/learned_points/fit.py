"""Choosing the table's rules: a sign-constrained forward selection on the model's log-odds.

The model's raw log-odds of the training rows is the target; each candidate rule is a
column (what it gives each row with one point). The fit is weighted least squares with
the weights ``p (1 - p)`` of the model's probability ``p``: the curvature of the
cross-entropy between the model's probabilities and the table's, so the table is most
faithful where the model is least certain and converters are (a lasso on equal weights
spends the rules on the bulk of unpromising leads).

Every candidate has the model's direction for its signal: for an event, the sign of the
change of the model's log-odds when a lead gets one more such event now (measured in
:mod:`.effects`); for an attribute, the sign of the covariance between the column and
the model's own contribution for the attribute (its SHAP values, :func:`directions`). A
column is multiplied by its direction and its coefficient held non-negative
(non-negative least squares), so every rule's points have the model's sign; a candidate
without a direction never enters.

Rules are added one at a time, each time the one that lowers the weighted squared error
most given the rules already in (forward stepwise regression), among candidates that
share no event or value with them; the fit is redone after each step and rules whose
coefficient falls to zero leave. Then each rule in turn is swapped for the variant of
its field that fits best given the others (its cap, half-life, values or range), until
nothing improves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from predictive_scoring.learned_points.candidates import Candidate

RIDGE = 1e-9
"""Added to the diagonal of the selected columns' Gram matrix (near-duplicate columns)."""
SWEEPS = 3
"""Most passes of the variant swaps."""


@dataclass(frozen=True)
class Design:
    """The weighted, centred and signed candidate columns, summarised for fitting.

    Attributes:
        gram: ``S.T @ S`` for the signed, weighted, centred columns ``S``.
        cross: ``S.T @ y`` for the weighted, centred target ``y``.
        total: ``y @ y``: the squared error of a table with no rule.
        direction: The model's sign for each column (+1 or -1; 0: no direction).
    """

    gram: np.ndarray
    cross: np.ndarray
    total: float
    direction: np.ndarray


def directions(matrix: np.ndarray, attribution: np.ndarray) -> np.ndarray:
    """The model's direction for each candidate: the sign of the covariance between its
    column and the model's contribution for its signal (0 when either is constant)."""
    centred = matrix - matrix.mean(axis=0)
    return np.sign((centred * (attribution - attribution.mean(axis=0))).mean(axis=0))


def fit_weights(logodds: np.ndarray) -> np.ndarray:
    """``p (1 - p)`` of the model's probability, scaled to mean 1."""
    p = 1 / (1 + np.exp(-logodds))
    weights = p * (1 - p)
    return weights / weights.mean()


def design(matrix: np.ndarray, target: np.ndarray, weights: np.ndarray,
           direction: np.ndarray) -> Design:
    """Summarise the candidate columns for :func:`forward_select` and :func:`fit`."""
    root = np.sqrt(weights)
    columns = (matrix - weights @ matrix / weights.sum()) * direction * root[:, None]
    centred = (target - weights @ target / weights.sum()) * root
    return Design(columns.T @ columns, columns.T @ centred, float(centred @ centred),
                  direction)


def fit(summary: Design, chosen: Sequence[int]) -> tuple[np.ndarray, float]:
    """Non-negative least squares on the chosen (signed) columns.

    Returns:
        The coefficients (>= 0, one per chosen column) and the remaining squared error.
    """
    if not chosen:
        return np.zeros(0), summary.total
    index = np.asarray(chosen)
    gram = summary.gram[np.ix_(index, index)] + RIDGE * np.eye(len(index))
    # ||S w - y||^2 = ||L.T w - L^-1 S.T y||^2 + constant, with gram = L L.T
    lower = np.linalg.cholesky(gram)
    coefficients, _ = nnls(lower.T, np.linalg.solve(lower, summary.cross[index]))
    error = summary.total - 2 * coefficients @ summary.cross[index] \
        + coefficients @ gram @ coefficients
    return coefficients, float(error)


def _gains(summary: Design, chosen: list[int], coefficients: np.ndarray) -> np.ndarray:
    """The drop in squared error from adding each column to ``chosen`` (least squares,
    before the sign constraint; -inf where the column would enter with the wrong sign)."""
    gram = summary.gram
    along = summary.cross - (gram[:, chosen] @ coefficients if chosen else 0.0)
    left = np.diag(gram).copy()
    if chosen:
        selected = gram[np.ix_(chosen, chosen)] + RIDGE * np.eye(len(chosen))
        left -= (gram[chosen, :] * np.linalg.solve(selected, gram[chosen, :])).sum(axis=0)
    usable = (along > 0) & (left > 1e-9 * max(float(np.diag(gram).max()), 1e-300))
    return np.where(usable, along ** 2 / np.where(usable, left, 1.0), -np.inf)


def forward_select(summary: Design, candidates: Sequence[Candidate], usable: np.ndarray,
                   max_rules: int, min_gain: float, chosen: Sequence[int] = ()) -> list[int]:
    """Add rules by forward stepwise regression until ``max_rules`` or no rule gains
    ``min_gain`` of the total squared error.

    Args:
        summary: The design.
        candidates: The candidates (for which rules may stand together).
        usable: Which candidates may enter.
        max_rules: Most rules in the table.
        min_gain: Least share of the total squared error a new rule must remove.
        chosen: Rules already in.

    Returns:
        Positions of the chosen candidates, every coefficient positive.
    """
    chosen = list(chosen)
    coefficients, _ = fit(summary, chosen)
    while len(chosen) < max_rules:
        gains = np.where(usable, _gains(summary, chosen, coefficients), -np.inf)
        entering = _best_apart(gains / summary.total, min_gain, candidates, chosen)
        if entering is None:
            break
        chosen, coefficients = _kept(summary, [*chosen, entering])
    return chosen


def _best_apart(gains: np.ndarray, min_gain: float, candidates: Sequence[Candidate],
                chosen: list[int]) -> int | None:
    """The candidate of largest gain, at least ``min_gain``, sharing no event or value with
    the chosen rules; None when there is none."""
    for j in np.argsort(-gains, kind="stable"):
        if gains[j] < min_gain:
            return None
        if not any(candidates[j].overlaps(candidates[k]) for k in chosen):
            return int(j)
    return None


def _kept(summary: Design, chosen: list[int]) -> tuple[list[int], np.ndarray]:
    """The chosen columns whose non-negative coefficient stays above zero, refitted."""
    coefficients, _ = fit(summary, chosen)
    kept = [j for j, c in zip(chosen, coefficients, strict=True) if c > 0]
    return (kept, coefficients[coefficients > 0]) if len(kept) == len(chosen) else (
        kept, fit(summary, kept)[0])


def refine(summary: Design, candidates: Sequence[Candidate], usable: np.ndarray,
           chosen: Sequence[int]) -> list[int]:
    """Swap each chosen rule for the variant of its field that fits best given the others
    (another cap or half-life, neighbouring values, another range), until none improves.
    """
    chosen = list(chosen)
    _, error = fit(summary, chosen)
    by_field: dict[str, np.ndarray] = {}
    for _ in range(SWEEPS):
        swapped = False
        for position in range(len(chosen)):
            others = chosen[:position] + chosen[position + 1:]
            field = candidates[chosen[position]].field
            if field not in by_field:
                by_field[field] = np.flatnonzero(usable & np.array(
                    [c.field == field for c in candidates]))
            for j in by_field[field]:
                if j in chosen or any(candidates[j].overlaps(candidates[k]) for k in others):
                    continue
                trial = [*chosen[:position], int(j), *chosen[position + 1:]]
                coefficients, trial_error = fit(summary, trial)
                if trial_error < error - 1e-12 * summary.total and (coefficients > 0).all():
                    chosen, error, swapped = trial, trial_error, True
        if not swapped:
            break
    return chosen


def admit_if(summary: Design, candidates: Sequence[Candidate], usable: np.ndarray,
             chosen: list[int], max_rules: int,
             better: Callable[[list[int], list[int]], bool]) -> list[int]:
    """Add candidates from ``usable`` one by one (each the best next rule, replacing the
    weakest rule when the table is full) while ``better(with, without)`` says so.

    Args:
        summary: The design.
        candidates: The candidates.
        usable: The candidates on trial (e.g. the company's own sends).
        chosen: The table without them.
        max_rules: Most rules in the table.
        better: Judges a table with the new rule against the one without.
    """
    while True:
        room = chosen if len(chosen) < max_rules else _without_weakest(summary, chosen)
        grown = forward_select(summary, candidates, usable, len(room) + 1, 0.0, room)
        if len(grown) <= len(room) or not better(grown, chosen):
            return chosen
        chosen = grown


def _without_weakest(summary: Design, chosen: list[int]) -> list[int]:
    """``chosen`` less the rule whose removal costs the least squared error."""
    costs = [fit(summary, chosen[:k] + chosen[k + 1:])[1] for k in range(len(chosen))]
    weakest = int(np.argmin(costs))
    return chosen[:weakest] + chosen[weakest + 1:]
