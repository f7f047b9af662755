"""The model's own direction for each event signal, measured by intervention.

A points rule on an event says "one more such event moves the lead this way". Its sign is
therefore the sign of what the model does when a lead gets one more such event, *now*:
on a seeded sample of the training snapshots, one event of the signal is added at the
moment of scoring (:data:`FRESH_EVENT_AGE` before ``as_of``) and the model's raw log-odds
(:func:`model_logodds`) is read before and after, through the scorer's own encoding and
features. The mean change is the signal's *effect*; a signal whose effect is under
:data:`MIN_EFFECT` has no direction (the model does not clearly care), so no rule is made
of it.

A correlation cannot stand in for this: when training spans lead ages from a day to a
year, many old events of a kind (nurture opens, say) go with leads that never convert,
so the covariance between the rule's count and the model's contributions can be negative
while every fresh event of that kind raises the model's log-odds.

The model sees events through *keys* (:class:`~predictive_scoring.features.FeatureSpec`):
an event counts under its ``(type, detail)`` key when the model has one, else under its
type's own key. Each key is probed once, with a representative event (the detail itself;
for a type's own key, its most frequent detail without a key of its own). A signal that
counts under several keys (a type whatever its detail) has the mean of their effects
weighted by how often the type's training events fall under each: the effect of one more
event drawn as the type's events are. Every cap and half-life variant of a signal shares
its direction.

A rule on a set of an attribute's values is read against the leads it does not count,
and a CRM admin compares it with the usual lead: its direction is the sign of the
model's change when a lead's value becomes one of the set's rather than the most common
other value (:func:`value_set_direction`), on the same leads; none when one of its
values clearly moves the model the other way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from predictive_scoring.features import FeatureSpec
from predictive_scoring.models.scorer import LeadScorer

Key = tuple[str, str | None]
"""A behaviour key: ``(event type, detail)``, detail None for a type's own key."""

LOGIT_CLIP = 1e-6
"""The model's probabilities are clipped to ``[LOGIT_CLIP, 1 - LOGIT_CLIP]`` for log-odds."""
EFFECT_ROWS = 2_000
"""Training snapshots (a seeded sample, one per lead) the effects are measured on: the
mean change of the log-odds is then known to a few thousandths (its standard error on
6,000 simulated leads: 0.001-0.002 for the effects near :data:`MIN_EFFECT`, at most 0.005
for the largest), and one probe costs one encoding and one prediction of that many
rows."""
MIN_EFFECT = 0.01
"""Smallest mean change of the log-odds (1% of the odds; a seventh of a point at the
default scale) one fresh event must make for its signal to have a direction."""
FRESH_EVENT_AGE = pd.Timedelta(hours=1)
"""How long before the moment of scoring the probing event happens."""


def model_logodds(scorer: LeadScorer, features: pd.DataFrame) -> np.ndarray:
    """The classifier's log-odds (before calibration, so no ranking is lost to ties)."""
    p = np.clip(scorer.pipeline.predict_proba(features)[:, 1], LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Probe:
    """The event that stands for one behaviour key, and how common the key is.

    Attributes:
        event_type: The event's type.
        detail: Its detail (None: an event without one).
        share: Share of its type's training events that count under the key.
    """

    event_type: str
    detail: str | None
    share: float


def key_probes(spec: FeatureSpec, events: pd.DataFrame) -> dict[Key, Probe]:
    """The probing event of every key of the model's event types.

    Args:
        spec: The model's behaviour vocabulary.
        events: Training events (``event_type``, optionally ``detail``): their
            frequencies pick the representative details and weigh the keys.
    """
    detail = (events["detail"] if "detail" in events
              else pd.Series(None, index=events.index, dtype=object))
    counts = pd.DataFrame({"event_type": events["event_type"].astype(str),
                           "detail": detail.astype(object).where(detail.notna(), None)}
                          ).value_counts(dropna=False)
    paired: dict[str, set[str]] = {}
    for event_type, key_detail in spec.detail_keys:
        paired.setdefault(event_type, set()).add(key_detail)
    probes: dict[Key, Probe] = {}
    for event_type in spec.event_types:
        own = paired.get(event_type, set())
        seen = counts[counts.index.get_level_values(0) == event_type]
        by_detail = {(None if pd.isna(d) else str(d)): int(n)
                     for (_, d), n in seen.items()}
        total = sum(by_detail.values())
        for key_detail in sorted(own):
            probes[(event_type, key_detail)] = Probe(
                event_type, key_detail, by_detail.get(key_detail, 0) / total if total else 0.0)
        rest = {d: n for d, n in by_detail.items() if d not in own}
        representative = max(rest, key=lambda d: (rest[d], d is not None, str(d)),
                             default=None)
        probes[(event_type, None)] = Probe(
            event_type, representative,
            sum(rest.values()) / total if total else float(not own))
    return probes


def probe_rows(frame: pd.DataFrame, most: int, seed: int) -> np.ndarray:
    """Positions of at most ``most`` rows of ``frame``, one per lead, drawn with a seed.

    One snapshot per lead, so an event added at one snapshot's moment is never an old
    event of another snapshot of the same lead; each lead's snapshot is drawn at random
    among its own, so leads weigh alike, as in the fit's snapshot weights.
    """
    order = np.random.default_rng(seed).permutation(len(frame))
    first = order[~frame["lead_id"].iloc[order].duplicated().to_numpy()]
    return np.sort(first[:most])


def fresh_event_effects(scorer: LeadScorer, leads: pd.DataFrame, events: pd.DataFrame,
                        probes: dict[Key, Probe]) -> dict[Key, float]:
    """Per key, the mean change of the model's log-odds when each lead gets one more
    event of it :data:`FRESH_EVENT_AGE` before its ``as_of``.

    Args:
        scorer: The trained scorer.
        leads: Snapshots, one per lead (lead fields, ``lead_id``, ``created_at``,
            ``as_of``).
        events: Their leads' events.
        probes: The key -> its probing event.
    """
    latest = leads.groupby("lead_id", observed=True)["as_of"].max()
    own = events.loc[events["lead_id"].isin(latest.index)]
    # only events before a snapshot's as_of are read: the rest need no encoding per probe
    own = own.loc[(own["timestamp"] < own["lead_id"].map(latest)).to_numpy()]

    def logodds(with_events: pd.DataFrame) -> np.ndarray:
        return model_logodds(scorer, scorer.features(leads, scorer.encode(leads, with_events)))

    before = logodds(own)
    moment = (leads["as_of"] - FRESH_EVENT_AGE).astype(own["timestamp"].dtype).array
    effects = {}
    for key, probe in probes.items():
        extra = pd.DataFrame({"lead_id": leads["lead_id"].to_numpy(), "timestamp": moment,
                              "event_type": probe.event_type, "detail": probe.detail})
        added = pd.concat([own, extra], ignore_index=True)
        effects[key] = float(np.mean(logodds(added) - before))
    return effects


def signal_effect(keys: tuple[Key, ...], effects: dict[Key, float],
                  probes: dict[Key, Probe]) -> float:
    """The effect of one more event of a signal counting under ``keys``: their effects
    weighted by their shares of the type's events (alike when none has any)."""
    shares = np.array([probes[key].share for key in keys])
    weights = shares if shares.sum() > 0 else np.ones(len(keys))
    return float(np.array([effects[key] for key in keys]) @ weights / weights.sum())


def event_directions(keys: list[tuple[Key, ...]], effects: dict[Key, float],
                     probes: dict[Key, Probe], min_effect: float = MIN_EFFECT
                     ) -> np.ndarray:
    """Per event signal (the keys it counts under), the sign of its effect; 0 when the
    effect is under ``min_effect``."""
    measured = np.array([signal_effect(k, effects, probes) for k in keys])
    return np.where(np.abs(measured) >= min_effect, np.sign(measured), 0.0)


def value_logodds(scorer: LeadScorer, features: pd.DataFrame, column: str,
                  values: list[object]) -> dict[str, float]:
    """Per value, the model's mean log-odds of the rows with ``column`` set to it (the
    rest of each row as it is)."""
    return {str(value): float(np.mean(model_logodds(scorer, features.assign(
        **{column: value})))) for value in values}


def value_set_direction(values: list[str], reference: str, logodds: dict[str, float],
                        shares: dict[str, float], min_effect: float = MIN_EFFECT) -> float:
    """The direction of a rule counting ``values`` of an attribute: the sign of the mean
    change of the model's log-odds from the most common other value (``reference``) to
    the rule's values, weighted by how often they occur; 0 when under ``min_effect`` or
    when one of the values clearly moves the model the other way."""
    changes = np.array([logodds[v] - logodds[reference] for v in values])
    weights = np.array([shares.get(v, 0.0) for v in values])
    weights = weights if weights.sum() > 0 else np.ones(len(values))
    effect = float(changes @ weights / weights.sum())
    against = np.sign(changes) == -np.sign(effect)
    if abs(effect) < min_effect or (against & (np.abs(changes) >= min_effect)).any():
        return 0.0
    return float(np.sign(effect))
