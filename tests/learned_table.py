"""What makes a learned points table one a CRM admin can type in, checked from the table
alone (shared by the unit tests and the CLI tests of ``train`` and ``learn-points``)."""

from __future__ import annotations

import itertools
import math

from predictive_scoring.config import AttributeRule, EventRule, RulesConfig

HALF_LIVES = {None, 7, 30, 90}
CAPPED_EVENTS = {None, 1, 3, 10}


def assert_a_crm_table(rules: RulesConfig, max_rules: int) -> None:
    """At most ``max_rules`` rules; whole, non-zero points; caps of 1, 3 or 10 events and
    half-lives of 7, 30 or 90 days; no two rules counting the same event or value (so no
    signal has two signs); whole stage thresholds increasing from 0 or more."""
    table = [*rules.event_rules, *rules.attribute_rules]
    assert 0 < len(table) <= max_rules, len(table)
    for rule in table:
        assert rule.points == int(rule.points) != 0, rule
    for rule in rules.event_rules:
        assert rule.half_life_days in HALF_LIVES, rule
        events = None if rule.cap is None else rule.cap / abs(rule.points)
        assert events in CAPPED_EVENTS, rule
    for k, first in enumerate(table):
        for second in table[k + 1:]:
            assert not _overlap(first, second), (first, second)
    bars = [bar for _, bar in sorted(rules.stage_thresholds.items(), key=lambda i: i[0].rank)]
    assert bars[0] >= 0 and all(bar == int(bar) for bar in bars), bars
    assert all(low < high for low, high in itertools.pairwise(bars)), bars
    assert rules.starting_points == int(rules.starting_points) >= 0


def _overlap(a: EventRule | AttributeRule, b: EventRule | AttributeRule) -> bool:
    if isinstance(a, EventRule) and isinstance(b, EventRule):
        if a.event_type != b.event_type:
            return False
        if a.detail is None or b.detail is None:
            return True
        return bool(_listed(a.detail) & _listed(b.detail))
    if isinstance(a, AttributeRule) and isinstance(b, AttributeRule) and a.field == b.field:
        if "is_null" in (a.op, b.op):
            return a.op == b.op
        if a.op in ("eq", "in") and b.op in ("eq", "in"):
            return bool(_listed(a.value) & _listed(b.value))
        low_a, high_a = _range(a)
        low_b, high_b = _range(b)
        return max(low_a, low_b) < min(high_a, high_b)
    return False


def _listed(value: object) -> set[str]:
    return {str(v) for v in value} if isinstance(value, list) else {str(value)}


def _range(rule: AttributeRule) -> tuple[float, float]:
    """The half-open range ``[low, high)`` a numeric rule holds (``between`` closed on the
    right, so its upper bound is nudged past itself)."""
    if rule.op == "lt":
        return -math.inf, float(rule.value)
    if rule.op == "gte":
        return float(rule.value), math.inf
    low, high = rule.value
    return float(low), math.nextafter(float(high), math.inf)
