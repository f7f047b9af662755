"""Event rules: points per matching event before the row's ``as_of``, with caps and
half-lives, counted over the point-in-time pairs with one weighted count for all rules."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from predictive_scoring.config import EventRule
from predictive_scoring.features import PointInTime, lookup_codes, take_events


def event_rule_points(
    tables: EventRuleTables,
    pit: PointInTime,
    n_rows: int,
    event_types: np.ndarray | pd.Categorical,
    event_details: np.ndarray | pd.Categorical,
) -> np.ndarray:
    """Points each event rule gives each row, from the events before the row's as_of.

    Args:
        tables: The event rules' tables (:func:`event_rule_tables`).
        pit: Point-in-time pairs of rows and events (see ``features.point_in_time``).
        n_rows: Number of scored rows.
        event_types: Event type of every event the pairs index.
        event_details: Detail of every event (a string, or None/NA when it has none).

    Returns:
        float64 array of shape ``(n_rows, rules)``: per rule, the sum over matching
        events of ``points * 0.5 ** (age_days / half_life_days)`` (no decay without a
        half-life), clipped to ``[-|cap|, |cap|]`` when the rule has a cap.
    """
    types, details, rule_keys, decay, rule_of_key = tables
    n_rules = len(rule_keys)
    # one key per pair's event: (type + 1, detail + 1), slot 0 holding types/details no
    # rule names (only the events before an as_of are looked up)
    type_code = lookup_codes(types, take_events(event_types, pit.event)) + 1
    detail_code = lookup_codes(details, take_events(event_details, pit.event)) + 1
    pair_key = type_code * (len(details) + 1) + detail_code
    # every (rule, pair) match at once: one weighted count over rule-major cells. Each
    # cell adds its pairs in pair order either way, so both searches give the same sums.
    if rule_of_key is not None:  # no key counted by two rules: one lookup per pair
        pair_rule = rule_of_key[pair_key]
        pair = np.flatnonzero(pair_rule >= 0)
        rule = pair_rule[pair]
    else:
        rule, pair = np.nonzero(rule_keys[:, pair_key])
    weights = decay.points[rule] * 0.5 ** (pit.age_days[pair] / decay.half_life[rule])
    totals = np.bincount(rule * n_rows + pit.snapshot[pair], weights=weights,
                         minlength=n_rules * n_rows).reshape(n_rules, n_rows).T
    return np.minimum(np.maximum(totals, -decay.cap), decay.cap)


@dataclass(frozen=True)
class _Decay:
    """Per event rule: points per event, half-life (inf: none) and cap (inf: none)."""

    points: np.ndarray
    half_life: np.ndarray
    cap: np.ndarray


def _details(rule: EventRule) -> list[str]:
    if rule.detail is None:
        return []
    return [rule.detail] if isinstance(rule.detail, str) else list(rule.detail)


EventRuleTables = tuple[tuple[str, ...], tuple[str, ...], np.ndarray, _Decay,
                        np.ndarray | None]


def event_rule_tables(rules: Sequence[EventRule]) -> EventRuleTables:
    """What :func:`event_rule_points` counts with (at least one rule), built once per set
    of rules (cached by each rule's type, details, points, half-life and cap)."""
    return _event_rule_tables(tuple(
        (rule.event_type, None if rule.detail is None else tuple(_details(rule)),
         rule.points, rule.half_life_days, rule.cap) for rule in rules))


@lru_cache(maxsize=64)
def _event_rule_tables(matched: tuple[tuple[str, tuple[str, ...] | None, float,
                                            float | None, float | None], ...]
                       ) -> EventRuleTables:
    """The event types and details the rules name, which event keys (see
    :func:`event_rule_points`) each rule counts (one row per rule), their decay, and the
    one rule counting each key when no key has two (else None).

    An API request scores one lead, and building the tables cost more than counting its
    events: they are built once per set of rules.

    Args:
        matched: Per rule, its event type, its details (None: any detail), points,
            half-life in days and cap (None: none).
    """
    types = tuple(dict.fromkeys(event_type for event_type, *_ in matched))
    details = tuple(dict.fromkeys(d for _, wanted, *_ in matched for d in wanted or ()))
    keys = np.zeros((len(matched), len(types) + 1, len(details) + 1), dtype=bool)
    for j, (event_type, wanted, *_) in enumerate(matched):
        row = types.index(event_type) + 1
        if wanted is None:
            keys[j, row, :] = True
        else:
            keys[j, row, [details.index(d) + 1 for d in wanted]] = True
    keys = keys.reshape(len(matched), -1)
    # 0.5 ** (age / inf) is exactly 1: a rule without a half-life counts its points whole
    decay = _Decay(points=_frozen([points for _, _, points, _, _ in matched]),
                   half_life=_frozen([math.inf if h is None else h for *_, h, _ in matched]),
                   cap=_frozen([math.inf if cap is None else abs(cap) for *_, cap in matched]))
    keys.flags.writeable = False
    return types, details, keys, decay, _rule_of_key(keys)


def _rule_of_key(keys: np.ndarray) -> np.ndarray | None:
    """The rule counting each event key (-1: none), or None when some key is counted by
    several rules (a type's rule and a rule on one of its details, say)."""
    if (keys.sum(axis=0) > 1).any():
        return None
    rule = np.where(keys.any(axis=0), keys.argmax(axis=0), -1)
    rule.flags.writeable = False
    return rule


def _frozen(values: Sequence[float]) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    array.flags.writeable = False
    return array

