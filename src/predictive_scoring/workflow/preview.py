"""The promotion preview for marketing ops: what changes on the same leads if the new
model takes over from the one in use (the champion, or the points before any model).

Pure functions of the two scorers' stages and weights on the challenger's test leads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

WEIGHT_FIELDS = 5
"""Fields shown whose global weight moved most."""


@dataclass(frozen=True)
class Preview:
    """What a promotion changes on the same leads.

    Attributes:
        before: What scores the leads now (``champion version 3`` or ``the points``).
        n: Leads (test snapshots) compared.
        converters: How many of them converted.
        moved_up: Leads whose suggested stage goes up with the new model.
        moved_down: Leads whose suggested stage goes down.
        handoff_stage: The first stage handed to sales.
        volume_before: Leads at the hand-off stage or later now.
        volume_after: The same with the new model.
        captured_before: Converters among the leads handed off now.
        captured_after: The same with the new model.
        weights: Fields whose global weight (mean |SHAP|, log-odds) moved most:
            ``feature``, ``before``, ``after``, ``change`` (empty when the points are in
            use: they have no weights on the same scale).
    """

    before: str
    n: int
    converters: int
    moved_up: int
    moved_down: int
    handoff_stage: str
    volume_before: int
    volume_after: int
    captured_before: int
    captured_after: int
    weights: pd.DataFrame = field(default_factory=pd.DataFrame)

    def block(self) -> dict[str, Any]:
        """The preview as ``metrics.json``'s ``promotion_preview`` block."""
        return {"before": self.before, "n": self.n, "converters": self.converters,
                "moved_up": self.moved_up, "moved_down": self.moved_down,
                "unchanged": self.n - self.moved_up - self.moved_down,
                "handoff_stage": self.handoff_stage,
                "volume_before": self.volume_before, "volume_after": self.volume_after,
                "captured_before": self.captured_before,
                "captured_after": self.captured_after,
                "weights_moved": self.weights.to_dict(orient="records")}


def stage_positions(stages: np.ndarray, order: Sequence[str]) -> np.ndarray:
    """Each stage's place in the funnel order (0 first).

    Raises:
        ValueError: A stage that is not in ``order``.
    """
    places = pd.Index(list(order)).get_indexer(np.asarray(stages, dtype=object).astype(str))
    if (places < 0).any():
        unknown = sorted(set(np.asarray(stages, dtype=object)[places < 0].astype(str)))
        raise ValueError(f"stages {unknown} are not in the funnel order {list(order)}")
    return places


def weight_moves(before: pd.DataFrame | None, after: pd.DataFrame,
                 n: int = WEIGHT_FIELDS) -> pd.DataFrame:
    """The fields whose mean |SHAP| moved most between two global importance tables
    (``feature``, ``mean_abs``); a field one model lacks weighs 0 there."""
    columns = ["feature", "before", "after", "change"]
    if before is None:
        return pd.DataFrame(columns=columns)
    merged = pd.merge(before[["feature", "mean_abs"]].rename(columns={"mean_abs": "before"}),
                      after[["feature", "mean_abs"]].rename(columns={"mean_abs": "after"}),
                      on="feature", how="outer").fillna({"before": 0.0, "after": 0.0})
    merged["change"] = merged["after"] - merged["before"]
    ranked = merged.reindex(merged["change"].abs().sort_values(ascending=False,
                                                               kind="stable").index)
    return ranked.head(n)[columns].reset_index(drop=True)


def promotion_preview(y: np.ndarray, before_stage: np.ndarray, after_stage: np.ndarray,
                      order: Sequence[str], handoff: str, before: str,
                      weights: tuple[pd.DataFrame | None, pd.DataFrame]) -> Preview:
    """The preview on the same leads.

    Args:
        y: 0/1 outcome per lead.
        before_stage: The suggested stage now (champion, or the points' stage).
        after_stage: The new model's suggested stage.
        order: The funnel's stages in order.
        handoff: The first stage handed to sales.
        before: What scores the leads now, in words.
        weights: Global importance now (None for the points) and with the new model.
    """
    y = np.asarray(y).astype(bool)
    now, then = stage_positions(before_stage, order), stage_positions(after_stage, order)
    at = list(order).index(handoff)
    sent_now, sent_then = now >= at, then >= at
    return Preview(before, len(y), int(y.sum()), int((then > now).sum()),
                   int((then < now).sum()), handoff, int(sent_now.sum()),
                   int(sent_then.sum()), int((sent_now & y).sum()),
                   int((sent_then & y).sum()), weight_moves(*weights))
