"""The promotion preview's figure: hand-off volume and converters captured before and
after, and the fields whose global weight moved most. It draws ``metrics.json``'s
``promotion_preview`` block, in the report's colours."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from predictive_scoring.reporting.plots import FIGSIZE, SCORER_COLOURS

BEFORE_COLOUR, AFTER_COLOUR = SCORER_COLOURS[1], SCORER_COLOURS[0]


def preview_figure(preview: Mapping[str, Any]) -> Figure:
    """Left: leads handed to sales and converters among them, now and with the new
    model; right (when the change is from a model): the largest moves of global weight."""
    moved = preview["weights_moved"]
    figure = Figure(figsize=(FIGSIZE[0] * (1.6 if moved else 0.9), FIGSIZE[1] * 0.8),
                    layout="constrained")
    axes = figure.subplots(1, 2 if moved else 1, squeeze=False)[0]
    ax = axes[0]
    groups = ["handed to sales", "converters among them"]
    now = [preview["volume_before"], preview["captured_before"]]
    then = [preview["volume_after"], preview["captured_after"]]
    at = np.arange(len(groups))
    for offset, values, label, colour in ((-0.2, now, f"now ({preview['before']})",
                                           BEFORE_COLOUR),
                                          (0.2, then, "new model", AFTER_COLOUR)):
        bars = ax.bar(at + offset, values, width=0.4, label=label, color=colour)
        ax.bar_label(bars, labels=[f"{v:,}" for v in values], fontsize=8)
    ax.set_xticks(at, groups)
    ax.set_ylabel("test leads")
    ax.set_title(f"At stage {preview['handoff_stage']} and later", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    if moved:
        ax = axes[1]
        names = [row["feature"] for row in moved][::-1]
        change = np.array([row["change"] for row in moved][::-1])
        ax.barh(names, change, color=np.where(change >= 0, AFTER_COLOUR, BEFORE_COLOUR))
        ax.axvline(0, color="#7F7F7F", linewidth=0.8)
        ax.set_xlabel("change of mean |SHAP| (log-odds)")
        ax.set_title("Fields whose weight moved most", fontsize=10)
    return figure
