"""Figures for the scorer comparison report: ROC, precision-recall, calibration, gain, scores.

This module only draws: the numbers come from :mod:`predictive_scoring.evaluate` (gain,
calibration, stage tables) and from scikit-learn (ROC and precision-recall curves). Each
function builds a fresh :class:`matplotlib.figure.Figure` without pyplot: no backend to
choose, no display needed, no global figure registry to fill or close. :func:`save_figures`
writes the figures as PNGs.

Scorers are passed as ``{name: score}`` in a dict. Colours are Okabe-Ito (safe for
colour-blind readers) and stay with the scorer across figures: the report's own names
(``"model"``, ``"rules (points)"``, ``"oracle"``) always get the same colour, even in a
figure that leaves one of them out; other names take the remaining colours in dict order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from predictive_scoring.evaluate import (
    calibration_table,
    expected_calibration_error,
    gain_at,
    gain_curve,
)

Vector = np.ndarray | pd.Series

DPI = 110
"""Resolution of the saved PNGs; with :data:`FIGSIZE` a figure is about 800 x 550 px."""

FIGSIZE = (800 / DPI, 550 / DPI)

SCORER_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000")
"""Okabe-Ito colours (yellow left out: too pale on white)."""

NAMED_COLOURS = {"model": SCORER_COLOURS[0], "rules (points)": SCORER_COLOURS[1],
                 "hand-set points": SCORER_COLOURS[1], "oracle": SCORER_COLOURS[2],
                 "learned points": SCORER_COLOURS[3]}
"""Fixed colours of the report's scorers, so each looks the same in every figure."""

REFERENCE_COLOUR = "#7F7F7F"
CONVERTED_COLOUR = "#D55E00"
NOT_CONVERTED_COLOUR = "#8C8C8C"

STAGE_TABLE_COLUMNS = ("leads", "conversion_rate")


# ----------------------------------------------------------------------------- helpers
def new_figure() -> Figure:
    """An empty report-sized figure (about 800 x 550 px when saved) with constrained layout."""
    return Figure(figsize=FIGSIZE, layout="constrained")


def _percent(share: float, _position: int | None = None) -> str:
    """Tick label of a share: 0.05 -> '5%', 0.025 -> '2.5%' (no trailing '.0')."""
    return f"{100 * share:.4g}%"


def scorer_colours(names: Sequence[str]) -> dict[str, str]:
    """Colour of each scorer: its fixed colour if it has one, else the next unused colour."""
    taken = {NAMED_COLOURS[name] for name in names if name in NAMED_COLOURS}
    spare = iter([colour for colour in SCORER_COLOURS if colour not in taken] * len(names))
    return {name: NAMED_COLOURS.get(name) or next(spare) for name in names}


def outcomes(y: Vector) -> np.ndarray:
    """The labels as an int array of 0/1, or ValueError naming the first bad value."""
    values = np.asarray(y)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"y must be a non-empty one-dimensional array; got shape {values.shape}")
    bad = ~np.isin(values, (0, 1))
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"y must hold only 0 and 1; found {values[row].item()!r} at row {row}")
    return values.astype(int)


def scorer_arrays(y: np.ndarray, scorers: Mapping[str, Vector]) -> dict[str, np.ndarray]:
    """Each score as a float array; ValueError if none, or one is misshaped or not finite."""
    if not scorers:
        raise ValueError("scorers is empty: pass at least one {name: score} pair")
    arrays = {str(name): np.asarray(score, dtype=float) for name, score in scorers.items()}
    for name, score in arrays.items():
        if score.shape != y.shape:
            raise ValueError(f"score {name!r} has shape {score.shape} but y has {y.shape}; "
                             "pass one score per lead")
        if not np.isfinite(score).all():
            row = int(np.argmax(~np.isfinite(score)))
            raise ValueError(f"score {name!r} must be finite; found {score[row]} at row {row}")
    return arrays


def _one_outcome(y: np.ndarray) -> str | None:
    """Why a ranking curve is not defined (all leads share one outcome), or None."""
    if np.unique(y).size == 2:
        return None
    if y[0] == 1:
        return f"not defined: all {y.size:,} leads converted"
    return f"not defined: none of the {y.size:,} leads converted"


def _note_undefined(ax: Axes, reason: str) -> None:
    """Write ``reason`` across the middle of an axes whose curves were left out."""
    ax.text(0.5, 0.5, reason, transform=ax.transAxes, ha="center", va="center",
            fontsize=11, color=REFERENCE_COLOUR, wrap=True,
            bbox={"boxstyle": "round", "fc": "white", "ec": REFERENCE_COLOUR})


def _percent_axes(ax: Axes, xlabel: str, ylabel: str) -> None:
    """Label both axes and show their 0-1 values as percentages."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_formatter(FuncFormatter(_percent))
    ax.yaxis.set_major_formatter(FuncFormatter(_percent))
    ax.grid(alpha=0.3)


def _titled(title: str, reason: str | None) -> str:
    """The title, with the reason a figure is empty appended when there is one."""
    return title if reason is None else f"{title} ({reason})"


# ------------------------------------------------------------------ ranking curves
def _ranking_axes(y: Vector, scorers: Mapping[str, Vector]
                  ) -> tuple[Figure, Axes, np.ndarray, dict[str, np.ndarray], str | None]:
    """A new one-axes figure with the checked labels, scores and why curves are undefined."""
    labels = outcomes(y)
    figure = new_figure()
    return (figure, figure.subplots(), labels, scorer_arrays(labels, scorers),
            _one_outcome(labels))


def _finish_ranking(ax: Axes, reason: str | None, title: str,
                    axis_labels: tuple[str, str]) -> None:
    """Note an undefined figure, label the percent axes, set limits and the title."""
    if reason is not None:
        _note_undefined(ax, reason)
    _percent_axes(ax, *axis_labels)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), title=_titled(title, reason))


def roc_figure(y: Vector, scorers: Mapping[str, Vector]) -> Figure:
    """ROC curves of several scorers on one axes, with each AUC in the legend.

    When all leads share one outcome the curves are not defined: the figure then holds
    only the chance diagonal, and its title and a note in the axes say why.

    Args:
        y: Conversion labels (0/1).
        scorers: Scores by scorer name (higher = more likely to convert), e.g.
            ``{"model": p, "rules (points)": points, "oracle": truth}``.

    Returns:
        A figure with one axes: a line per scorer, then the chance diagonal.
    """
    figure, ax, labels, scores, reason = _ranking_axes(y, scorers)
    if reason is None:
        for name, colour in scorer_colours(list(scores)).items():
            false_positive, true_positive, _ = roc_curve(labels, scores[name])
            auc = roc_auc_score(labels, scores[name])
            ax.plot(false_positive, true_positive, color=colour, lw=2,
                    label=f"{name}, AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", color=REFERENCE_COLOUR, label="chance, AUC 0.500")
    _finish_ranking(ax, reason, "ROC curves",
                    ("false positive rate (% of non-converters selected)",
                     "true positive rate (% of converters selected)"))
    ax.legend(loc="lower right")
    return figure


def pr_figure(y: Vector, scorers: Mapping[str, Vector]) -> Figure:
    """Precision-recall curves of several scorers, with average precision in the legend.

    The horizontal base-rate line is what selecting leads at random gives. When all
    leads share one outcome the curves are not defined (no converters to recall, or no
    ranking to judge): the figure then says so in its title and in the axes.

    Args:
        y: Conversion labels (0/1).
        scorers: Scores by scorer name (higher = more likely to convert).

    Returns:
        A figure with one axes: a step line per scorer, then the base-rate line.
    """
    figure, ax, labels, scores, reason = _ranking_axes(y, scorers)
    if reason is None:
        for name, colour in scorer_colours(list(scores)).items():
            precision, recall, _ = precision_recall_curve(labels, scores[name])
            average_precision = average_precision_score(labels, scores[name])
            ax.plot(recall, precision, drawstyle="steps-post", color=colour, lw=2,
                    label=f"{name}, AP {average_precision:.3f}")
    base_rate = labels.mean()
    ax.axhline(base_rate, ls="--", color=REFERENCE_COLOUR, label=f"base rate {base_rate:.1%}")
    _finish_ranking(ax, reason, "Precision-recall curves",
                    ("recall (% of converters selected)",
                     "precision (% of selected leads that converted)"))
    ax.legend(loc="upper right")
    return figure


# ---------------------------------------------------------------------- calibration
def _calibration_tables(
    y: np.ndarray, predictions: Mapping[str, np.ndarray], n_bins: int
) -> dict[str, tuple[pd.DataFrame, float]]:
    """Per scorer: its quantile-bin calibration table and its ECE."""
    return {name: (calibration_table(y, p, n_bins), expected_calibration_error(y, p, n_bins))
            for name, p in predictions.items()}


def _probability_range(tables: Mapping[str, tuple[pd.DataFrame, float]]) -> float:
    """Upper end of the axes: just above every bin's mean prediction and rate, at most 1.

    Conversion probabilities are often all small; zooming in keeps the bins apart
    instead of crowding them into a corner of the unit square.
    """
    highest = max(max(table["mean_predicted"].max(), table["observed_rate"].max())
                  for table, _ in tables.values())
    return float(min(1.0, 1.1 * highest)) if highest > 0 else 1.0


def _prediction_histogram(ax: Axes, predicted: np.ndarray, upper: float, colour: str) -> None:
    """Share of leads per prediction bin up to ``upper``; the last bin takes all above it."""
    edges = np.linspace(0, upper, 41)
    ax.hist(np.minimum(predicted, upper), bins=edges, histtype="step", lw=1.5, color=colour,
            weights=np.full(predicted.size, 1 / predicted.size))


def calibration_figure(y: Vector, probabilities: Mapping[str, Vector], n_bins: int) -> Figure:
    """Reliability diagram per scorer, with a histogram of its predictions underneath.

    The top axes plots each quantile bin's observed conversion rate against its mean
    prediction (:func:`~predictive_scoring.evaluate.calibration_table`), next to the
    diagonal of perfect calibration; the legend gives each scorer's ECE. The axes run
    from 0 to just above the largest bin mean or observed rate; the histogram's last bin
    also counts the predictions beyond that.

    Args:
        y: Conversion labels (0/1).
        probabilities: Predicted conversion probabilities by scorer name (for the
            rules: points mapped with ``isotonic_points_to_probability``).
        n_bins: The most equal-frequency bins per scorer.

    Returns:
        A figure with two axes sharing the x axis: reliability on top, histogram below.
    """
    labels = outcomes(y)
    predictions = scorer_arrays(labels, probabilities)
    tables = _calibration_tables(labels, predictions, n_bins)
    upper, colours = _probability_range(tables), scorer_colours(list(tables))
    figure = new_figure()
    reliability, histogram = figure.subplots(2, 1, sharex=True,
                                             gridspec_kw={"height_ratios": (3, 1)})
    reliability.plot([0, upper], [0, upper], ls="--", color=REFERENCE_COLOUR,
                     label="perfectly calibrated")
    for name, (table, ece) in tables.items():
        reliability.plot(table["mean_predicted"], table["observed_rate"], marker="o",
                         color=colours[name], lw=1.5, label=f"{name}, ECE {ece:.3f}")
        _prediction_histogram(histogram, predictions[name], upper, colours[name])
    _percent_axes(reliability, "", "observed conversion rate (% of leads in bin)")
    reliability.set(xlim=(0, upper), ylim=(0, upper),
                    title=f"Calibration: observed vs predicted ({n_bins} equal-frequency bins)")
    reliability.legend(loc="upper left")
    _percent_axes(histogram, "predicted conversion probability (%)", "share of leads")
    return figure


# ----------------------------------------------------------------------------- gain
def _stacked_labels(gains: np.ndarray, gap: float) -> tuple[np.ndarray, bool]:
    """Heights for the gain labels at one mark, and whether they go left of the mark.

    Gain curves never fall, so the area left of the mark and above the highest gain,
    and the area right of it and below the lowest gain, hold no curve: the labels are
    stacked in the first, highest gain on top, or in the second when the first would
    leave the axes.

    Returns:
        One height per gain, and True for left of the mark (False: right of it).
    """
    steps = gap * np.arange(1, gains.size + 1)
    heights, order = np.empty(gains.size), np.argsort(gains, kind="stable")
    above = gains.max() + steps[-1] <= 1.0
    heights[order] = gains.max() + steps if above else gains.min() - steps[::-1]
    return heights, above


def _annotate_gains(ax: Axes, gains: dict[str, np.ndarray], marks: np.ndarray) -> None:
    """Dot each scorer's gain at each mark, and label it in its colour clear of the curves."""
    colours = scorer_colours(list(gains))
    for column, mark in enumerate(marks):
        ax.axvline(mark, ls=":", lw=1, color=REFERENCE_COLOUR)
        at_mark = np.array([gain[column] for gain in gains.values()])
        heights, left = _stacked_labels(at_mark, 0.045)
        for name, gain, height in zip(gains, at_mark, heights, strict=True):
            ax.scatter(mark, gain, color=colours[name], s=30, zorder=3)
            ax.annotate(f"{gain:.0%}", (mark, height), xytext=(-3 if left else 3, 0),
                        textcoords="offset points", ha="right" if left else "left",
                        va="center", fontsize=8, color=colours[name], fontweight="bold",
                        bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none",
                              "alpha": 0.8})


def gain_figure(
    y: Vector, scorers: Mapping[str, Vector], marks: Sequence[float] = (0.05, 0.1, 0.2)
) -> Figure:
    """Cumulative gain curves with the random and perfect lines, gains marked at ``marks``.

    Curves come from :func:`~predictive_scoring.evaluate.gain_curve`: tied scores form
    straight segments (the expected curve under a random order within the tie), so
    points-based scores with big ties are drawn fairly. Each scorer's gain at each mark
    (:func:`~predictive_scoring.evaluate.gain_at`) is labelled on its curve. Without
    any converter the curves are not defined and the figure says so.

    Args:
        y: Conversion labels (0/1).
        scorers: Scores by scorer name (higher = more likely to convert).
        marks: Fractions of leads contacted at which to label the gains, each in (0, 1].

    Returns:
        A figure with one axes: a line per scorer, the random and perfect lines, and a
        dotted guide per mark.
    """
    labels = outcomes(y)
    scores, base_rate = scorer_arrays(labels, scorers), labels.mean()
    reason = None if base_rate > 0 else _one_outcome(labels)
    figure = new_figure()
    ax = figure.subplots()
    if reason is None:
        for name, colour in scorer_colours(list(scores)).items():
            ax.plot(*gain_curve(labels, scores[name]), color=colour, lw=2, label=name)
    ax.plot([0, 1], [0, 1], ls="--", color=REFERENCE_COLOUR, label="random order")
    if reason is None:
        ax.plot([0, base_rate, 1], [0, 1, 1], ls=":", color="black", label="perfect ranking")
        gains = {name: gain_at(labels, score, marks) for name, score in scores.items()}
        _annotate_gains(ax, gains, np.asarray(marks, dtype=float))
    else:
        _note_undefined(ax, reason)
    _percent_axes(ax, "leads contacted (% of all leads, best score first)",
                  "converters captured (% of all converters)")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), title=_titled("Cumulative gain", reason))
    ax.legend(loc="lower right")
    return figure


def lift_figure(y: Vector, scorers: Mapping[str, Vector]) -> Figure:
    """Cumulative lift curves: how many times the base conversion rate the top leads hold.

    The lift at a share of leads is its gain divided by that share (tie-aware, from
    :func:`~predictive_scoring.evaluate.gain_curve`); random order stays at 1. The
    first 1% of leads is left out, where a handful of leads make the curve jump.

    Args:
        y: Conversion labels (0/1).
        scorers: Scores by scorer name (higher = more likely to convert).

    Returns:
        A figure with one axes: a line per scorer and the random line at 1.
    """
    figure, ax, labels, scores, reason = _ranking_axes(y, scorers)
    if reason is None:
        grid = np.linspace(0.01, 1, 199)
        for name, colour in scorer_colours(list(scores)).items():
            leads, captured = gain_curve(labels, scores[name])
            ax.plot(grid, np.interp(grid, leads, captured) / grid, color=colour, lw=2,
                    label=name)
    else:
        _note_undefined(ax, reason)
    ax.axhline(1, ls="--", color=REFERENCE_COLOUR, label="random order")
    ax.xaxis.set_major_formatter(FuncFormatter(_percent))
    ax.grid(alpha=0.3)
    ax.set(xlim=(0, 1), ylim=(0, None), xlabel="leads contacted (% of all leads, best first)",
           ylabel="lift (conversion rate / overall rate)", title=_titled("Cumulative lift",
                                                                          reason))
    ax.legend(loc="upper right")
    return figure


# ------------------------------------------------------------------ distributions
def _points_bins(points: np.ndarray) -> np.ndarray:
    """Bin edges for rule points: bins a whole number of points wide, 40 at most."""
    low, high = np.floor(points.min()), np.ceil(points.max())
    width = max(1.0, float(np.ceil((high - low + 1) / 40)))
    return np.arange(low - width / 2, high + width, width)


def _outcome_histogram(ax: Axes, values: np.ndarray, y: np.ndarray, edges: np.ndarray) -> None:
    """Histogram of ``values`` per outcome, each normalised to 100% of its own leads."""
    for outcome, label, colour, style in (
        (0, "did not convert", NOT_CONVERTED_COLOUR, "stepfilled"),
        (1, "converted", CONVERTED_COLOUR, "step"),
    ):
        chosen = values[y == outcome]
        if chosen.size:
            ax.hist(chosen, bins=edges, weights=np.full(chosen.size, 1 / chosen.size),
                    histtype=style, color=colour, lw=2, alpha=0.6 if outcome == 0 else 1.0,
                    label=f"{label} (n={chosen.size:,})")
    ax.set_ylim(0, 1.2 * ax.get_ylim()[1])  # headroom keeps the legend off the bars
    ax.yaxis.set_major_formatter(FuncFormatter(_percent))
    ax.set_ylabel("share of the outcome's leads (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")


def score_distribution_figure(
    model_score_0_100: Vector, rule_points: Vector, y: Vector
) -> Figure:
    """Side-by-side histograms of the model's 0-100 score and the rules' points, by outcome.

    Each outcome's histogram sums to 100% of its own leads, so the few converters show
    as clearly as the many non-converters and the overlap of the two shapes is what
    tells a good scorer. The model's axis runs from 0 to the next multiple of 10 above
    its highest score.

    Args:
        model_score_0_100: The model's score of each lead, from 0 to 100.
        rule_points: The rules' points of each lead.
        y: Conversion labels (0/1).

    Returns:
        A figure with two axes: the model's score on the left, the rules' on the right.
    """
    labels = outcomes(y)
    scores = scorer_arrays(labels, {"model_score_0_100": model_score_0_100,
                                     "rule_points": rule_points})
    model_score, points = scores["model_score_0_100"], scores["rule_points"]
    if not ((model_score >= 0) & (model_score <= 100)).all():
        row = int(np.argmax(~((model_score >= 0) & (model_score <= 100))))
        raise ValueError(f"model_score_0_100 must lie in [0, 100]; found {model_score[row]} "
                         f"at row {row}")
    figure = new_figure()
    model_ax, rules_ax = figure.subplots(1, 2)
    # Scores often sit low on the 0-100 scale; 20 bins over the used range show the shapes.
    upper = max(10.0, min(100.0, 10 * np.ceil(model_score.max() / 10)))
    _outcome_histogram(model_ax, model_score, labels, np.linspace(0, upper, 21))
    model_ax.set(xlabel="model score (0-100 scale)", title="Model score", xlim=(0, upper))
    _outcome_histogram(rules_ax, points, labels, _points_bins(points))
    rules_ax.set(xlabel="rule points", title="Rules (points)")
    figure.suptitle("Score distribution by outcome")
    return figure


# ---------------------------------------------------------------------------- stages
def _check_stage_tables(table_model: pd.DataFrame, table_rules: pd.DataFrame) -> None:
    """ValueError unless both tables have the needed columns and the same stages."""
    for name, table in (("table_model", table_model), ("table_rules", table_rules)):
        missing = [column for column in STAGE_TABLE_COLUMNS if column not in table.columns]
        if missing:
            raise ValueError(f"{name} lacks columns {missing}; pass the frame from "
                             "evaluate.stage_conversion")
    if list(table_model.index) != list(table_rules.index):
        raise ValueError(f"the tables list different stages: model {list(table_model.index)}, "
                         f"rules {list(table_rules.index)}")


def stage_conversion_figure(
    table_model: pd.DataFrame,
    table_rules: pd.DataFrame,
    names: tuple[str, str] = ("model", "rules (points)"),
) -> Figure:
    """Grouped bars of the conversion rate per funnel stage, model next to rules.

    Each bar is labelled with the number of leads in the stage; an empty stage gets no
    bar, only its ``0`` label.

    Args:
        table_model: Stage table of the model's stages, from
            :func:`~predictive_scoring.evaluate.stage_conversion`.
        table_rules: Stage table of the rules' stages, over the same stages.
        names: Legend names of the model and the rules (they pick the bar colours as in
            the other figures).

    Returns:
        A figure with one axes holding two bar groups (model first).
    """
    _check_stage_tables(table_model, table_rules)
    figure = new_figure()
    ax = figure.subplots()
    positions, width = np.arange(len(table_model)), 0.4
    colours = scorer_colours(names)
    for offset, name, table in ((-width / 2, names[0], table_model),
                                (width / 2, names[1], table_rules)):
        rates = table["conversion_rate"].to_numpy(dtype=float)
        bars = ax.bar(positions + offset, np.nan_to_num(rates), width, color=colours[name],
                      label=name)
        ax.bar_label(bars, labels=[f"{int(n):,}" for n in table["leads"]], fontsize=7,
                     padding=2)
    ax.set_xticks(positions, [str(stage) for stage in table_model.index])
    ax.yaxis.set_major_formatter(FuncFormatter(_percent))
    ax.margins(y=0.12)
    ax.grid(axis="y", alpha=0.3)
    ax.set(xlabel="stage (bar labels: leads in the stage)",
           ylabel="conversion rate (% of the stage's leads)",
           title="Conversion rate by stage: model vs rules")
    ax.legend(loc="best")
    return figure


def stage_crosstab_figure(leads: pd.DataFrame, conversion_rate: pd.DataFrame) -> Figure:
    """Heat map of rule stage (rows) against suggested stage (columns).

    Each cell's colour is its conversion rate; its text the number of leads and the rate.
    Cells above the diagonal are leads the model moves up the funnel, below it down.

    Args:
        leads: Leads per cell, from :func:`~predictive_scoring.evaluate.stage_crosstab`.
        conversion_rate: Conversion rate per cell (NaN where empty), same shape.

    Returns:
        A figure with one axes and a colour bar.
    """
    if leads.shape != conversion_rate.shape or leads.shape[0] != leads.shape[1]:
        raise ValueError(f"leads {leads.shape} and conversion_rate {conversion_rate.shape} "
                         "must be the same square table; pass evaluate.stage_crosstab's output")
    figure = new_figure()
    ax = figure.subplots()
    rates = conversion_rate.to_numpy(dtype=float)
    colours = LinearSegmentedColormap.from_list("conversion", ["#FFFFFF", SCORER_COLOURS[0]])
    image = ax.imshow(np.ma.masked_invalid(rates), cmap=colours, vmin=0,
                      vmax=max(float(np.nanmax(rates)) if np.isfinite(rates).any() else 1, 1e-9))
    counts = leads.to_numpy()
    dark = np.nan_to_num(rates) > 0.6 * np.nanmax(np.r_[np.nan_to_num(rates).ravel(), 1e-9])
    for (row, column), count in np.ndenumerate(counts):
        text = f"{count:,}" if count == 0 else f"{count:,}\n{rates[row, column]:.0%}"
        ax.text(column, row, text, ha="center", va="center", fontsize=8,
                color="white" if dark[row, column] else "black")
    ax.set_xticks(range(len(leads.columns)), [str(c) for c in leads.columns])
    ax.set_yticks(range(len(leads.index)), [str(i) for i in leads.index])
    ax.set(xlabel="stage suggested by the model", ylabel="stage from the rules' points",
           title="Rule stage vs suggested stage (leads, conversion rate)")
    figure.colorbar(image, ax=ax, label="conversion rate",
                    format=FuncFormatter(_percent))
    return figure



def age_band_figure(by_age: Sequence[Mapping[str, object]], ece_limit: float = 0.02
                    ) -> Figure:
    """The model and the points per lead-age band: ROC-AUC side by side (left) and the
    model's calibration error (right).

    A band without both outcomes gets no ROC-AUC bar, only ``n/a``; an empty band no ECE
    bar either. Bars are labelled with the band's test leads and converters.

    Args:
        by_age: ``metrics.json``'s ``by_age`` entries
            (:func:`~predictive_scoring.evaluate.by_age`).
        ece_limit: Drawn as a dashed line on the ECE axes.

    Returns:
        A figure with two axes.
    """
    if not by_age:
        raise ValueError("no lead-age bands to draw (a table-shaped dataset has no ages)")
    figure = new_figure()
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": (3, 2)})
    bands = [str(entry["band"]) for entry in by_age]
    positions, width = np.arange(len(bands)), 0.4
    colours = scorer_colours(["model", "rules (points)"])
    for offset, name, key in ((-width / 2, "model", "model_roc_auc"),
                              (width / 2, "rules (points)", "rules_roc_auc")):
        values = np.array([np.nan if e[key] is None else float(e[key]) for e in by_age])
        bars = left.bar(positions + offset, np.nan_to_num(values), width,
                        color=colours[name], label=name)
        left.bar_label(bars, labels=["n/a" if np.isnan(v) else f"{v:.2f}" for v in values],
                       fontsize=7, padding=2)
    left.axhline(0.5, color=REFERENCE_COLOUR, linestyle=":", linewidth=1)
    left.set_xticks(positions, [f"{b}\n{int(e['n']):,} / {int(e['positives']):,}"
                                for b, e in zip(bands, by_age, strict=True)], fontsize=8)
    left.set_ylim(0, 1.08)
    left.grid(axis="y", alpha=0.3)
    left.set(xlabel="lead age (days); test leads / converters", ylabel="ROC-AUC",
             title="Ranking per lead age")
    left.legend(loc="lower left", fontsize=8)
    ece = np.array([np.nan if e["ece"] is None else float(e["ece"]) for e in by_age])
    right.bar(positions, np.nan_to_num(ece), 0.6, color=colours["model"])
    right.axhline(ece_limit, color=REFERENCE_COLOUR, linestyle="--", linewidth=1,
                  label=f"{ece_limit:g}")
    right.set_xticks(positions, bands, fontsize=8)
    right.yaxis.set_major_formatter(FuncFormatter(_percent))
    right.grid(axis="y", alpha=0.3)
    right.set(xlabel="lead age (days)", ylabel="expected calibration error",
              title="Model calibration per lead age")
    right.legend(loc="best", fontsize=8)
    return figure

# ---------------------------------------------------------------------------- output
def save_figures(figures: Mapping[str, Figure], out_dir: Path) -> list[Path]:
    """Write each figure to ``out_dir / f"{name}.png"``, creating the folder if needed.

    The figures stay open (they hold no global state; drop them to free memory).

    Args:
        figures: Figures by file name without extension, e.g. ``{"roc": roc_figure(...)}``.
        out_dir: The folder to write to.

    Returns:
        The written paths, in the order of ``figures``.
    """
    for name in figures:
        if not name or Path(name).name != name or name in {".", ".."}:
            raise ValueError(f"figure name {name!r} must be a plain file name without "
                             "folders, e.g. 'roc'")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, figure in figures.items():
        path = out_dir / f"{name}.png"
        figure.savefig(path, dpi=DPI)
        paths.append(path)
    return paths
