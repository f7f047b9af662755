"""Figures of ``monitoring.html``, in the training report's style
(:mod:`predictive_scoring.reporting.plots`: its sizes, colours and helpers).

The first, :func:`accuracy_over_time_figure`, answers marketing ops' question at a
glance: the model's and the points' realised ROC-AUC per period on the matured leads,
above the leads scored each period (matured and still pending).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from predictive_scoring import evaluate
from predictive_scoring.monitoring.outcomes import MATURED
from predictive_scoring.reporting import plots
from predictive_scoring.stages import FUNNEL

MODEL, POINTS = "model", "hand-set points"
TOP_INPUTS = 15


def accuracy_over_time_figure(by_period: Sequence[Mapping[str, Any]]) -> Figure:
    """Realised ROC-AUC per period, model vs points; below it the leads scored.

    Periods with several model versions show each version's point (a marker per
    version); an empty period or one with a single outcome has no point.
    """
    periods = list(dict.fromkeys(block["period"] for block in by_period))
    if not periods:
        return empty_figure("Is the model still beating the points?", "no score logged in "
                            "the window")
    figure = plots.new_figure()
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)})
    x = {period: i for i, period in enumerate(periods)}
    colours = plots.scorer_colours([MODEL, POINTS])
    versions = sorted({b["model_version"] for b in by_period if b["model_version"]})
    markers = dict(zip(versions, "osD^v<>p*h", strict=False))
    for version in versions:
        mine = [b for b in by_period if b["model_version"] == version]
        xs = [x[b["period"]] for b in mine]
        label = f" ({version})" if len(versions) > 1 else ""
        for name, key in ((MODEL, "model"), (POINTS, "rules")):
            ys = [np.nan if b[key]["roc_auc"] is None else b[key]["roc_auc"] for b in mine]
            top.plot(xs, ys, marker=markers[version], color=colours[name], lw=1.8,
                     label=f"{name}{label}")
    top.axhline(0.5, ls="--", color=plots.REFERENCE_COLOUR, lw=1, label="chance")
    lowest = min([0.4, *[b[k]["roc_auc"] - 0.05 for b in by_period for k in ("model", "rules")
                         if b["model_version"] and b[k]["roc_auc"] is not None]])
    top.set(ylabel="realised ROC-AUC (matured leads)", ylim=(lowest, 1.0),
            title="Is the model still beating the points? Realised ROC-AUC per period")
    top.grid(alpha=0.3)
    top.legend(loc="lower left", fontsize=8)
    matured = np.zeros(len(periods))
    pending = np.zeros(len(periods))
    for block in by_period:
        matured[x[block["period"]]] += block["n_matured"]
        pending[x[block["period"]]] += block["n_pending"]
    bottom.bar(range(len(periods)), matured, color=plots.SCORER_COLOURS[0], alpha=0.6,
               label="matured")
    bottom.bar(range(len(periods)), pending, bottom=matured, color=plots.REFERENCE_COLOUR,
               alpha=0.5, label="pending")
    bottom.set_xticks(range(len(periods)), periods, rotation=45 if len(periods) > 8 else 0,
                      fontsize=8)
    bottom.set(ylabel="scores")
    bottom.legend(loc="upper left", fontsize=8)
    bottom.grid(axis="y", alpha=0.3)
    return figure


def empty_figure(title: str, reason: str) -> Figure:
    """A figure that says why it has nothing to draw."""
    figure = plots.new_figure()
    ax = figure.subplots()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, reason, transform=ax.transAxes, ha="center", va="center",
            fontsize=11, color=plots.REFERENCE_COLOUR)
    return figure


def calibration_figure(rows: pd.DataFrame, ece_bins: int) -> Figure:
    """Reliability of the model's probabilities on the matured leads."""
    matured = rows.loc[rows["status"] == MATURED]
    if matured.empty:
        return empty_figure("Calibration", "no matured score yet")
    return plots.calibration_figure(matured["label"].to_numpy(np.int8),
                                    {MODEL: matured["probability"].to_numpy()}, ece_bins)


def stage_figure(rows: pd.DataFrame) -> Figure:
    """Conversion of the matured leads by the model's suggested stage next to the rules'
    stage (the same funnel stages on both)."""
    matured = rows.loc[rows["status"] == MATURED]
    model = matured["suggested_stage"].fillna("unknown").astype(str)
    rules = matured["rule_stage"].fillna("unknown").astype(str)
    present = set(model.unique()) | set(rules.unique())
    order = [s.value for s in FUNNEL if s.value in present] + sorted(
        present - {s.value for s in FUNNEL})
    y = matured["label"].to_numpy(np.int8)
    if not order:
        return empty_figure("Conversion by stage", "no matured score yet")
    return plots.stage_conversion_figure(
        evaluate.stage_conversion(y, model.to_numpy(object), order),
        evaluate.stage_conversion(y, rules.to_numpy(object), order), (MODEL, POINTS))


def drift_figure(version: str, found: Mapping[str, Any], psi_watch: float,
                 psi_alert: float) -> Figure:
    """The score's and the most shifted inputs' PSI for one model version, against the
    watch and alert lines."""
    inputs = [f for f in found["inputs"] if f["psi"] is not None][:TOP_INPUTS]
    names = ["score (probability)", *[f["field"] for f in inputs]]
    values = [found["score"]["psi"] or 0.0, *[f["psi"] for f in inputs]]
    figure = plots.new_figure()
    ax = figure.subplots()
    colours = [plots.CONVERTED_COLOUR if v > psi_alert else plots.SCORER_COLOURS[1]
               if v > psi_watch else plots.SCORER_COLOURS[0] for v in values]
    positions = np.arange(len(names))[::-1]
    ax.barh(positions, values, color=colours)
    ax.set_yticks(positions, names, fontsize=8)
    for line, label in ((psi_watch, "watch"), (psi_alert, "alert")):
        ax.axvline(line, ls="--", color=plots.REFERENCE_COLOUR, lw=1)
        ax.text(line, positions.max() + 0.6, f" {label}", fontsize=8,
                color=plots.REFERENCE_COLOUR)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2f}"))
    ax.grid(axis="x", alpha=0.3)
    ax.set(xlabel="population stability index vs the training leads",
           title=f"Drift of {version}: the score and the {len(inputs)} most shifted inputs")
    return figure
