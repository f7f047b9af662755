"""The marketing funnel: stages in order, threshold mapping, and conversion analytics.

Stages run Subscriber -> Lead -> MQL -> SAL -> SQL -> Opportunity -> Customer, with
``lost`` as the exit a lead can take from any of them. Conversion analytics read the
contract's ``stage_changes`` table (``lead_id``, ``stage``, ``timestamp``) after the
dataset's CRM stage names have been mapped onto :class:`Stage`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache

import numpy as np
import pandas as pd


class Stage(StrEnum):
    """A funnel stage; iteration order is funnel order, ``lost`` last."""

    SUBSCRIBER = "subscriber"
    LEAD = "lead"
    MQL = "mql"
    SAL = "sal"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"
    LOST = "lost"

    @property
    def rank(self) -> int:
        """Position in the funnel (``lost`` ranks after customer but is not 'further')."""
        return _RANKS[self]


_RANKS = {stage: position for position, stage in enumerate(Stage)}


FUNNEL: tuple[Stage, ...] = tuple(s for s in Stage if s is not Stage.LOST)


def stage_for_values(
    values: np.ndarray, thresholds: Mapping[Stage, float]
) -> np.ndarray:
    """Map scores (points or probabilities) onto stages by minimum thresholds.

    Args:
        values: One score per lead.
        thresholds: The minimum score of each stage, increasing along the funnel.
            A score below every threshold gets the lowest stage.

    Returns:
        An object array of stage values (plain strings), one per lead.
    """
    if not thresholds:
        raise ValueError("at least one stage threshold is needed to map scores to stages")
    names, bars = _ladder(tuple(thresholds.items()))
    position = np.searchsorted(bars, np.asarray(values, dtype=float), side="right") - 1
    return names[np.maximum(position, 0)]  # below every bar: the lowest stage


@lru_cache(maxsize=64)
def _ladder(thresholds: tuple[tuple[Stage, float], ...]) -> tuple[np.ndarray, np.ndarray]:
    """Stage names and their bars in funnel order (built once per set of thresholds: an
    API request maps one score)."""
    ordered = sorted(thresholds, key=lambda item: item[0].rank)
    names = np.array([stage.value for stage, _ in ordered], dtype=object)
    bars = np.array([bar for _, bar in ordered], dtype=float)
    names.flags.writeable = False
    bars.flags.writeable = False
    return names, bars


def furthest_stage_reached(stage_changes: pd.DataFrame) -> pd.Series:
    """The furthest funnel stage each lead ever entered (``lost`` is not a step).

    Args:
        stage_changes: Contract frame with ``lead_id`` and ``stage`` (Stage values).

    Returns:
        Series indexed by lead_id holding the rank of the furthest stage.
    """
    ranks = stage_changes["stage"].map(_FUNNEL_RANK)
    return ranks.groupby(stage_changes["lead_id"]).max().dropna().astype(int)


_FUNNEL_RANK = {stage.value: stage.rank for stage in FUNNEL}


def funnel_conversion(stage_changes: pd.DataFrame, n_leads: int) -> pd.DataFrame:
    """Leads reaching each funnel stage and the conversion rate from the stage before.

    A lead counts as having reached every stage up to its furthest one: CRMs often skip
    steps (a demo request jumps a lead straight to SQL), and the lead still passed them.

    Args:
        stage_changes: Contract frame with ``lead_id`` and ``stage``.
        n_leads: All leads in the dataset (leads with no stage change count as leads).

    Returns:
        Frame indexed by stage with ``reached``, ``share_of_leads`` and
        ``rate_from_previous``.
    """
    furthest = furthest_stage_reached(stage_changes)
    reached = [int((furthest >= stage.rank).sum()) for stage in FUNNEL]
    reached[0] = max(reached[0], n_leads)
    table = pd.DataFrame({"reached": reached}, index=pd.Index([s.value for s in FUNNEL],
                                                               name="stage"))
    table["share_of_leads"] = table["reached"] / max(n_leads, 1)
    previous = table["reached"].shift(1)
    table["rate_from_previous"] = table["reached"] / previous.where(previous > 0)
    return table


def headline_rates(conversion: pd.DataFrame) -> dict[str, float]:
    """The three rates marketing teams watch: lead->MQL, MQL->SQL, SQL->won.

    Args:
        conversion: Output of :func:`funnel_conversion`.

    Returns:
        ``{"lead_to_mql", "mql_to_sql", "sql_to_won"}`` as fractions (NaN when the
        earlier stage is empty).
    """
    reached = conversion["reached"]
    pairs = {
        "lead_to_mql": (Stage.LEAD, Stage.MQL),
        "mql_to_sql": (Stage.MQL, Stage.SQL),
        "sql_to_won": (Stage.SQL, Stage.CUSTOMER),
    }
    return {name: _ratio(reached[b.value], reached[a.value]) for name, (a, b) in pairs.items()}


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else float("nan")
