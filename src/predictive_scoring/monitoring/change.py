"""Why did this lead's score change between two moments? Each field's share of the change,
worded like the reasons, adding up to it.

**Scale.** The score is ``100 x`` the calibrated probability (the unrounded score; the
0-100 integers a CRM shows are it rounded). Between the two moments each field's
contribution to the model's raw output (log-odds, :mod:`predictive_scoring.explain`)
changes by ``d_j``, and the ``d_j`` add up to the raw output's change exactly. The score
change ``S_to - S_from`` is shared among the fields in proportion to them::

    effect_j = d_j * (S_to - S_from) / (raw_to - raw_from)

The factor is the average slope of the (monotone) calibrated score between the two raw
outputs, so every effect keeps its log-odds sign and the effects add up to the score
change exactly (up to float rounding); when the raw output does not move, nothing
changed. This is the reasons' rule (``explain.score_effects``) applied to a change
instead of to the distance from the average lead.

The same function serves the CLI (``score-change``, a leads file and an events file) and
the API (``POST /v1/score/change``): both give it the two moments' contributions and
model input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from predictive_scoring import explain
from predictive_scoring.explain import MIN_REASON_POINTS, NO_CHANGE, describe, event_nouns
from predictive_scoring.models.kinds.base import Contributions
from predictive_scoring.models.scorer import LeadScorer


@dataclass(frozen=True)
class FieldChange:
    """One field's part in a score change.

    Attributes:
        field: Model input field.
        value_from: Its value at the first moment (None when missing).
        value_to: Its value at the second moment.
        effect: Score points of the change it accounts for (signed).
        sentence: E.g. ``"2 pricing page visits since 3 Mar 2025: +9"``.
    """

    field: str
    value_from: Any
    value_to: Any
    effect: float
    sentence: str


@dataclass(frozen=True)
class ScoreChange:
    """A lead's score at two moments and the change, field by field.

    Attributes:
        lead_id: The lead.
        as_of_from: The first moment (UTC).
        as_of_to: The second moment (UTC).
        probability_from: Calibrated probability at the first moment.
        probability_to: At the second.
        changes: Every field whose effect is not zero, largest first (their effects add
            up to :attr:`score_change`).
    """

    lead_id: str
    as_of_from: pd.Timestamp
    as_of_to: pd.Timestamp
    probability_from: float
    probability_to: float
    changes: tuple[FieldChange, ...]

    @property
    def score_from(self) -> float:
        """The unrounded score (100 x probability) at the first moment."""
        return 100 * self.probability_from

    @property
    def score_to(self) -> float:
        """The unrounded score at the second moment."""
        return 100 * self.probability_to

    @property
    def score_change(self) -> float:
        """``score_to - score_from``."""
        return self.score_to - self.score_from

    def shown(self) -> list[FieldChange]:
        """The changes worth a sentence (at least 0.05 points, as reasons)."""
        return [c for c in self.changes if abs(c.effect) >= MIN_REASON_POINTS]

    def as_dict(self) -> dict[str, Any]:
        """The change as plain JSON values (the API's answer)."""
        return {"lead_id": self.lead_id,
                "from": {"as_of": _iso(self.as_of_from),
                         "probability": self.probability_from,
                         "score": round(self.score_from)},
                "to": {"as_of": _iso(self.as_of_to), "probability": self.probability_to,
                       "score": round(self.score_to)},
                "score_change": self.score_change,
                "changes": [{"field": c.field, "value_from": _plain(c.value_from),
                             "value_to": _plain(c.value_to), "effect": c.effect,
                             "sentence": c.sentence} for c in self.changes]}


def score_change(scorer: LeadScorer, contrib: Contributions,
                 features: Mapping[str, Any], lead_id: str,
                 moments: tuple[pd.Timestamp, pd.Timestamp]) -> ScoreChange:
    """The change between the two rows of one lead (row 0 the first moment, row 1 the
    second).

    Args:
        scorer: The scorer.
        contrib: The two rows' contributions.
        features: The two rows' model input by field.
        lead_id: The lead.
        moments: The two moments.
    """
    calibrated = scorer.calibrator(1.0 / (1.0 + np.exp(-contrib.raw_output)))
    moved = contrib.raw_output[1] - contrib.raw_output[0]
    scale = (100 * (calibrated[1] - calibrated[0]) / moved if abs(moved) > NO_CHANGE
             else 0.0)
    effects = (contrib.values[1] - contrib.values[0]) * scale
    order = np.argsort(-np.abs(effects), kind="stable")
    changes = []
    for j in order:
        if effects[j] == 0:
            continue
        name = contrib.fields[j]
        values = np.asarray(features[name], dtype=object)
        before, after = _value(values[0]), _value(values[1])
        changes.append(FieldChange(name, before, after, float(effects[j]),
                                   f"{_words(scorer, name, before, after, moments[0])}: "
                                   f"{explain._points(float(effects[j]))}"))
    return ScoreChange(lead_id, moments[0], moments[1], float(calibrated[0]),
                       float(calibrated[1]), tuple(changes))


def change_from_frames(scorer: LeadScorer, lead: pd.DataFrame, events: pd.DataFrame | None,
                       moment_from: pd.Timestamp, moment_to: pd.Timestamp) -> ScoreChange:
    """:func:`score_change` of one lead row (``lead_id``, attributes and, events shape,
    ``created_at``) and its events, through the batch path.

    Raises:
        ValueError: The model scores leads without time (a table dataset), or the lead
            was created after the first moment.
    """
    if scorer.shape != "events":
        raise ValueError("this model scores leads without time (a table dataset): its "
                         "score changes only with the lead's attributes")
    created = pd.to_datetime(lead["created_at"], utc=True).iloc[0]
    if pd.isna(created) or created > moment_from:
        raise ValueError(f"lead {lead['lead_id'].iloc[0]}: created_at "
                         f"{'is missing' if pd.isna(created) else f'{created} is after'} "
                         f"{'' if pd.isna(created) else f'the first moment {moment_from}'}"
                         .strip())
    rows = pd.concat([lead, lead], ignore_index=True).assign(
        created_at=created, as_of=pd.to_datetime([moment_from, moment_to], utc=True))
    features = scorer.features(rows, scorer.encode(rows, events))
    return score_change(scorer, explain.contributions(scorer, features), features,
                        str(lead["lead_id"].iloc[0]), (moment_from, moment_to))


# ------------------------------------------------------------------ words
def _words(scorer: LeadScorer, field: str, before: Any, after: Any,
           moment_from: pd.Timestamp) -> str:
    """What changed in a field, in a salesperson's words."""
    since = _date(moment_from)
    column = scorer.feature_spec.column(field) if scorer.feature_spec is not None else None
    if column is None:
        if _same(before, after):
            return (f"{describe(scorer, field, after)} (unchanged; it weighs differently "
                    "with the lead's new activity)")
        return f"{describe(scorer, field, after)} (was {describe(scorer, field, before)})"
    if column.kind == "tenure":
        return f"Lead now created {explain._days(after)} ago" if after is not None else \
            describe(scorer, field, after)
    singular, plural = event_nouns(*column.key)
    if column.others:
        singular, plural = f"other {singular}", f"other {plural}"
    if column.kind == "since":
        if after is None:
            return f"No {singular} yet"
        if before is None:
            return f"First {singular} since {since}, {explain._days(after)} ago"
        return f"Last {singular} now {explain._days(after)} ago"
    old, new = float(before or 0), float(after or 0)
    if column.window is None and new > old:
        added = new - old
        return f"{explain._number(added)} {singular if added == 1 else plural} since {since}"
    return f"{describe(scorer, field, after)} (was {explain._number(old)} on {since})"


def _same(before: Any, after: Any) -> bool:
    return before == after or (before is None and after is None)


def _value(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _plain(value: Any) -> Any:
    value = _value(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _date(moment: pd.Timestamp) -> str:
    return f"{moment.day} {moment:%b %Y}"


def _iso(moment: pd.Timestamp) -> str:
    return pd.Timestamp(moment).tz_convert("UTC").isoformat().replace("+00:00", "Z")
