"""Figures of the accuracy page: confusion matrices at each threshold, and the backtest.

They draw the dicts of :func:`predictive_scoring.accuracy.accuracy_page` (the
``accuracy_page`` block of ``metrics.json``), in the report's scorer colours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from predictive_scoring.reporting.plots import (
    FIGSIZE,
    NOT_CONVERTED_COLOUR,
    new_figure,
    scorer_colours,
)

THRESHOLD_TITLES = {"handoff_volume": "at the points' hand-off volume",
                    "capacity": "at the sales capacity"}


def confusion_figure(thresholds: Mapping[str, Mapping[str, Any] | None]) -> Figure:
    """A confusion matrix per scorer (columns) and threshold (rows).

    Each matrix crosses the outcome (converted or not) with the hand-over (handed to sales
    or not); a cell shows its leads and their share of the outcome's row, and is shaded
    by that share.

    Args:
        thresholds: The ``thresholds`` of an accuracy page: name -> ``{"volume",
            "scorers": {scorer: confusion counts}}`` (None: left out).
    """
    shown = {name: block for name, block in thresholds.items() if block is not None}
    if not shown:
        raise ValueError("no threshold to draw")
    scorers = list(next(iter(shown.values()))["scorers"])
    figure = Figure(figsize=(FIGSIZE[0] * 1.3, 2.7 * len(shown) + 0.4), layout="constrained")
    axes = np.atleast_2d(figure.subplots(len(shown), len(scorers), squeeze=False))
    for row, (name, block) in enumerate(shown.items()):
        for column, scorer in enumerate(scorers):
            _matrix(axes[row, column], block["scorers"][scorer],
                    f"{scorer}\n{THRESHOLD_TITLES.get(name, name)} ({block['volume']:,})")
    return figure


def _matrix(ax: Any, counts: Mapping[str, float], title: str) -> None:
    cells = np.array([[counts["true_positives"], counts["false_negatives"]],
                      [counts["false_positives"], counts["true_negatives"]]], dtype=float)
    rows = cells.sum(axis=1, keepdims=True)
    share = np.divide(cells, rows, out=np.zeros_like(cells), where=rows > 0)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(cells):
        ax.text(j, i, f"{int(value):,}\n{share[i, j]:.0%}", ha="center", va="center",
                fontsize=9, color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks([0, 1], ["handed over", "not handed"], fontsize=8)
    ax.set_yticks([0, 1], ["converted", "did not"], fontsize=8)
    ax.set_title(title, fontsize=9)


def backtest_figure(backtest: Mapping[str, Any]) -> Figure:
    """Converters reached week by week in the backtest, per scorer, against all converters.

    Args:
        backtest: The ``backtest`` of an accuracy page.
    """
    weekly = pd.DataFrame(backtest["weekly"])
    starts = pd.to_datetime(weekly["week_start"])
    scorers = list(backtest["scorers"])
    figure = new_figure()
    ax = figure.subplots()
    ax.bar(starts, weekly["converters"].cumsum(), width=5, color=NOT_CONVERTED_COLOUR,
           alpha=0.35, label="all converters of these weeks")
    for name, colour in scorer_colours(scorers).items():
        reached = weekly["reached"].map(lambda row, n=name: row[n]).cumsum()
        ax.plot(starts, reached, marker="o", color=colour,
                label=f"{name}: {backtest['scorers'][name]['converters_reached']:.0f} reached")
    ax.set(xlabel="week starting", ylabel="converters reached (cumulative)",
           title=f"Backtest: {backtest['weeks']} weeks, the capacity's best leads each week")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    figure.autofmt_xdate()
    return figure
