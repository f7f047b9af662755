"""Figures of the model's drivers: global weights (bars and beeswarm) and the fit vs
engagement quadrant.

Like :mod:`~predictive_scoring.reporting.plots`, each function builds a fresh
:class:`matplotlib.figure.Figure` without pyplot, in the same colours.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from predictive_scoring.reporting.plots import (
    CONVERTED_COLOUR,
    FIGSIZE,
    NOT_CONVERTED_COLOUR,
    REFERENCE_COLOUR,
    SCORER_COLOURS,
    Vector,
    new_figure,
    outcomes,
    scorer_arrays,
)


def quadrant_figure(fit_logodds: Vector, engagement_logodds: Vector, y: Vector,
                    fit_cut: float, engagement_cut: float, most: int = 4_000,
                    seed: int = 0) -> Figure:
    """Fit against engagement per lead (log-odds each adds), with the quadrant lines.

    Converted leads are drawn over the others, so where they gather shows; with more
    than ``most`` leads a random sample of ``most`` is drawn (same seed, same sample).

    Args:
        fit_logodds: Each lead's log-odds from fit (attribute) fields.
        engagement_logodds: Each lead's log-odds from engagement (behaviour) fields.
        y: Conversion labels (0/1).
        fit_cut: Fit above this is a good fit (grades A-B).
        engagement_cut: Engagement above this is engaged (warm or hot).
        most: The most leads to draw.
        seed: Seed of the sample.

    Returns:
        A figure with one axes, the four quadrants named in its corners.
    """
    labels = outcomes(y)
    values = scorer_arrays(labels, {"fit_logodds": fit_logodds,
                                     "engagement_logodds": engagement_logodds})
    fit, engagement = values["fit_logodds"], values["engagement_logodds"]
    shown = np.arange(len(labels))
    if len(shown) > most:
        shown = np.sort(np.random.default_rng(seed).choice(len(shown), most, replace=False))
    figure = new_figure()
    ax = figure.subplots()
    for outcome, label, colour, size in ((0, "did not convert", NOT_CONVERTED_COLOUR, 6),
                                         (1, "converted", CONVERTED_COLOUR, 12)):
        chosen = shown[labels[shown] == outcome]
        ax.scatter(engagement[chosen], fit[chosen], s=size, color=colour, alpha=0.5,
                   label=f"{label} (n={int((labels == outcome).sum()):,})", linewidths=0)
    ax.axvline(engagement_cut, color="black", lw=1)
    ax.axhline(fit_cut, color="black", lw=1)
    corners = (("sales-ready", 0.98, 0.98, "right", "top"),
               ("nurture", 0.02, 0.98, "left", "top"),
               ("check fit", 0.98, 0.02, "right", "bottom"),
               ("low priority", 0.02, 0.02, "left", "bottom"))
    for name, x, y_at, ha, va in corners:
        ax.text(x, y_at, name, transform=ax.transAxes, ha=ha, va=va, fontsize=10,
                fontweight="bold", color=REFERENCE_COLOUR)
    ax.grid(alpha=0.3)
    ax.set(xlabel="engagement (log-odds the lead's behaviour adds)",
           ylabel="fit (log-odds the lead's attributes add)",
           title="Fit vs engagement")
    ax.legend(loc="center right")
    return figure


# ----------------------------------------------------------------------- explanations
GROUP_COLOURS = {"fit": SCORER_COLOURS[0], "engagement": SCORER_COLOURS[4]}
"""Fit and engagement keep their colours in every explanation figure."""


def _group_colour(group: str) -> str:
    return GROUP_COLOURS.get(group, REFERENCE_COLOUR)


def importance_figure(importance: pd.DataFrame, groups: pd.DataFrame,
                      max_features: int = 20) -> Figure:
    """Global weights: mean |SHAP| of the top fields, and of fit vs engagement.

    Args:
        importance: Columns ``feature``, ``group``, ``mean_abs``, largest first (from
            :func:`predictive_scoring.explain.global_importance`).
        groups: Columns ``group``, ``mean_abs`` (from ``explain.group_importance``).
        max_features: Fields shown (the strongest).

    Returns:
        A figure with the fields' bars (coloured by group) and the groups' bars.
    """
    figure = Figure(figsize=(FIGSIZE[0], FIGSIZE[1] * 1.2), layout="constrained")
    fields_ax, groups_ax = figure.subplots(2, 1, height_ratios=[4, 1])
    top = importance.head(max_features).iloc[::-1]
    fields_ax.barh(top["feature"], top["mean_abs"],
                   color=[_group_colour(g) for g in top["group"]])
    fields_ax.set(xlabel="mean |SHAP value| (log-odds)",
                  title=f"What drives the score: top {len(top)} of {len(importance)} fields")
    fields_ax.legend(handles=[Patch(color=_group_colour(group), label=group)
                              for group in dict.fromkeys(top["group"])], loc="lower right")
    fields_ax.tick_params(axis="y", labelsize=8)
    ordered = groups.iloc[::-1]
    groups_ax.barh(ordered["group"], ordered["mean_abs"],
                   color=[_group_colour(g) for g in ordered["group"]])
    groups_ax.set(xlabel="mean |sum of the group's SHAP values| (log-odds)",
                  title="Fit vs engagement")
    return figure


def _feature_colours(values: pd.Series) -> np.ndarray:
    """Each lead's value as its percentile within the field (NaN: missing or text)."""
    numbers = pd.to_numeric(values, errors="coerce") if not (
        pd.api.types.is_string_dtype(values) or values.dtype == object) else None
    if numbers is None or numbers.notna().sum() < 2 or numbers.nunique() < 2:
        return np.full(len(values), np.nan)
    return numbers.rank(pct=True).to_numpy(dtype=float)


def _swarm_offsets(x: np.ndarray, rng: np.random.Generator, width: float) -> np.ndarray:
    """Vertical jitter that grows with the density of points around each x."""
    if len(x) < 2 or np.ptp(x) == 0:
        return rng.uniform(-width, width, len(x))
    counts, edges = np.histogram(x, bins=50)
    density = counts[np.clip(np.searchsorted(edges, x, side="right") - 1, 0, 49)]
    return rng.uniform(-1, 1, len(x)) * width * density / counts.max()


def beeswarm_figure(values: np.ndarray, features: pd.DataFrame, fields: Sequence[str],
                    max_features: int = 15, seed: int = 0) -> Figure:
    """SHAP summary (beeswarm): each lead's contribution per field, coloured by its value.

    Args:
        values: ``(n_leads, len(fields))`` contributions (log-odds).
        features: The leads' model input, with a column per field.
        fields: Field of each column of ``values``.
        max_features: Fields shown, the strongest by mean |SHAP| on top.
        seed: Seed of the vertical jitter.

    Returns:
        The figure: points left of zero lower the score, right of zero raise it; colour
        from low (blue) to high (red) value within the field, grey for categories and
        missing values.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(fields) or len(features) != len(values):
        raise ValueError(f"values of shape {values.shape} do not match {len(fields)} fields "
                         f"and {len(features)} leads")
    figure = new_figure()
    ax = figure.subplots()
    strongest = np.argsort(-np.abs(values).mean(axis=0), kind="stable")[:max_features]
    rng = np.random.default_rng(seed)
    for row, j in enumerate(strongest[::-1]):
        colour = _feature_colours(features[fields[j]])
        y = row + _swarm_offsets(values[:, j], rng, 0.38)
        missing = np.isnan(colour)
        ax.scatter(values[missing, j], y[missing], s=4, color=NOT_CONVERTED_COLOUR,
                   alpha=0.6, linewidths=0, rasterized=True)
        points = ax.scatter(values[~missing, j], y[~missing], s=4, c=colour[~missing],
                            cmap="coolwarm", vmin=0, vmax=1, alpha=0.8, linewidths=0,
                            rasterized=True)
    ax.axvline(0, color=REFERENCE_COLOUR, linewidth=0.8)
    ax.set_yticks(range(len(strongest)), [fields[j] for j in strongest[::-1]], fontsize=8)
    ax.set(xlabel="SHAP value (log-odds): left lowers the score, right raises it",
           title=f"How each field moves the score ({len(values):,} leads)")
    if len(strongest):
        bar = figure.colorbar(points, ax=ax, ticks=[0, 1], pad=0.01)
        bar.ax.set_yticklabels(["low", "high"])
        bar.set_label("field value (grey: category or missing)")
    return figure
