"""A learned table as edits to the table in use: kept, changed, added, removed.

A CRM admin applies a learned table by hand, rule by rule, to the rules the CRM holds
today. Each learned rule is paired with the current rule that counts the same thing (the
same event type and detail, or the same attribute compared the same way), or a close one
(the same event type with other details; the same attribute with other values or another
bound, pointing the same way). A paired rule keeps the current rule's name, so the admin
edits the rule they know; it is *kept* when nothing differs and *changed* otherwise.
Learned rules left unpaired are *added*, current rules left unpaired *removed*.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from predictive_scoring.config import AttributeRule, EventRule, RulesConfig
from predictive_scoring.learned_points.wording import describe

Rule = EventRule | AttributeRule
CHANGES = ("kept", "changed", "added", "removed")
_OP_FAMILY = {"eq": "values", "in": "values", "lt": "below", "lte": "below", "gt": "above",
              "gte": "above", "between": "between", "is_null": "missing", "ne": "ne",
              "contains": "contains"}


@dataclass(frozen=True)
class Pair:
    """A current rule and the learned rule that replaces it (either may be None)."""

    current: Rule | None
    learned: Rule | None

    @property
    def change(self) -> str:
        """``kept``, ``changed``, ``added`` or ``removed``."""
        if self.current is None:
            return "added"
        if self.learned is None:
            return "removed"
        return "kept" if not differences(self.current, self.learned) else "changed"


def pair_rules(current: RulesConfig, learned: RulesConfig) -> list[Pair]:
    """Pair each learned rule with the current rule counting the same (or a close) thing.

    Exact matches are paired first, then close ones, largest overlap first; each rule is
    paired at most once. Returns the pairs in the learned table's order, then the
    current rules left unpaired (removed) in theirs.
    """
    old = [*current.event_rules, *current.attribute_rules]
    new = [*learned.event_rules, *learned.attribute_rules]
    scored = sorted(((closeness(a, b), i, j) for i, a in enumerate(old)
                     for j, b in enumerate(new) if closeness(a, b) > 0), reverse=True)
    partner: dict[int, int] = {}
    taken: set[int] = set()
    for _, i, j in scored:
        if j not in partner and i not in taken:
            partner[j] = i
            taken.add(i)
    pairs = [Pair(old[partner[j]] if j in partner else None, rule) for j, rule in enumerate(new)]
    return pairs + [Pair(rule, None) for i, rule in enumerate(old) if i not in taken]


CLOSE = 0.5
"""Rules on the same event type or field whose details or values overlap at least this
much (shared over all) are close."""


def closeness(current: Rule, learned: Rule) -> float:
    """How alike two rules' conditions are: 2 the same, in [CLOSE, 1] close, 0 unrelated.

    Rules on the same condition are the same rule whatever their points; rules on close
    conditions pointing opposite ways (a bonus against a penalty) are not close.
    """
    if type(current) is not type(learned):
        return 0.0
    same_way = (current.points > 0) == (learned.points > 0)
    if isinstance(current, EventRule):
        if current.event_type != learned.event_type:
            return 0.0
        mine, theirs = _detail_set(current), _detail_set(learned)
        if mine == theirs:
            return 2.0
        if not same_way:
            return 0.0
        return _close(_overlap(mine, theirs)) if mine and theirs else CLOSE
    if current.field != learned.field or _OP_FAMILY[current.op] != _OP_FAMILY[learned.op]:
        return 0.0
    if _condition(current) == _condition(learned):
        return 2.0
    if not same_way:
        return 0.0
    if _OP_FAMILY[current.op] == "values":
        return _close(_overlap(_value_set(current), _value_set(learned)))
    return CLOSE


def _detail_set(rule: EventRule) -> frozenset[str] | None:
    if rule.detail is None:
        return None
    return frozenset([rule.detail] if isinstance(rule.detail, str) else rule.detail)


def _value_set(rule: AttributeRule) -> frozenset[str]:
    values = rule.value if isinstance(rule.value, list) else [rule.value]
    return frozenset(str(v) for v in values)


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b)


def _close(overlap: float) -> float:
    return overlap if overlap >= CLOSE else 0.0


def _condition(rule: AttributeRule) -> tuple[str, object]:
    if _OP_FAMILY[rule.op] == "values":
        return "values", _value_set(rule)
    return rule.op, str(rule.value)


def differences(current: Rule, learned: Rule) -> list[str]:
    """What an admin changes to turn ``current`` into ``learned``, e.g.
    ``["points +16 -> +13", "cap (points) none -> 39"]``; empty when they count the same."""
    found = []
    if isinstance(current, EventRule):
        labels = {"detail": "details", "cap": "cap (points)", "half_life_days": "half-life (days)"}
        for key, label in labels.items():
            if _normalised(getattr(current, key)) != _normalised(getattr(learned, key)):
                found.append(f"{label} {_shown(getattr(current, key))} -> "
                             f"{_shown(getattr(learned, key))}")
    elif _condition(current) != _condition(learned):
        found.append(f"condition {condition_text(current)} -> {condition_text(learned)}")
    if current.points != learned.points:
        found.insert(0, f"points {current.points:+g} -> {learned.points:+g}")
    return found


def _normalised(value: object) -> object:
    if isinstance(value, list):
        return frozenset(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _shown(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def table_edits(current: RulesConfig, learned: RulesConfig) -> pd.DataFrame:
    """The learned table as edits to the current one, one row per rule.

    Returns:
        Columns ``change`` (kept, changed, added, removed), ``rule`` (the current rule's
        name, or the added rule's), ``what it counts`` (the learned rule's description, or
        the removed rule's), ``current points``, ``learned points`` (empty where the rule
        is absent) and ``what changes`` (e.g. ``points +16 -> +13; cap (points) none ->
        39``), ordered by change then by the learned table's order.
    """
    rows = []
    for pair in pair_rules(current, learned):
        shown = pair.learned or pair.current
        rows.append({
            "change": pair.change, "rule": (pair.current or pair.learned).name,
            "what it counts": shown.description or describe(shown),
            "current points": "" if pair.current is None else f"{pair.current.points:+g}",
            "learned points": "" if pair.learned is None else f"{pair.learned.points:+g}",
            "what changes": "; ".join(differences(pair.current, pair.learned))
            if pair.change == "changed" else ""})
    frame = pd.DataFrame(rows, columns=["change", "rule", "what it counts",
                                        "current points", "learned points", "what changes"])
    order = frame["change"].map({c: k for k, c in enumerate(CHANGES)})
    return frame.iloc[order.argsort(kind="stable")].reset_index(drop=True)


def condition_text(rule: Rule) -> str:
    """A rule's condition, e.g. ``each page_view (pricing)`` or ``seniority in student,
    intern``."""
    if isinstance(rule, EventRule):
        detail = _detail_set(rule)
        return f"each {rule.event_type}" + (f" ({', '.join(sorted(detail))})" if detail else "")
    words = {"eq": "=", "in": "in", "lt": "<", "lte": "<=", "gt": ">", "gte": ">=",
             "between": "between", "ne": "!=", "contains": "contains"}
    if rule.op == "is_null":
        return f"{rule.field} is empty"
    return f"{rule.field} {words[rule.op]} {_shown(rule.value)}"


def threshold_edits(current: RulesConfig, learned: RulesConfig) -> pd.DataFrame:
    """Stage thresholds, current against learned, in funnel order."""
    stages = sorted({*current.stage_thresholds, *learned.stage_thresholds},
                    key=lambda stage: stage.rank)
    return pd.DataFrame({
        "stage": [s.value for s in stages],
        "current": [_bar(current.stage_thresholds.get(s)) for s in stages],
        "learned": [_bar(learned.stage_thresholds.get(s)) for s in stages]})


def _bar(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def adopt_names(current: RulesConfig, learned: RulesConfig) -> RulesConfig:
    """The learned table with each paired rule renamed after the current rule it edits;
    an added rule named like a current rule it does not edit gets ``_learned`` appended."""
    renamed: dict[int, str] = {}
    for pair in pair_rules(current, learned):
        if pair.current is not None and pair.learned is not None:
            renamed[id(pair.learned)] = pair.current.name
    taken = {rule.name for rule in [*current.event_rules, *current.attribute_rules]}

    def name(rule: Rule) -> str:
        if id(rule) in renamed:
            return renamed[id(rule)]
        return rule.name if rule.name not in taken else f"{rule.name}_learned"

    return learned.model_copy(update={
        "event_rules": [r.model_copy(update={"name": name(r)}) for r in learned.event_rules],
        "attribute_rules": [r.model_copy(update={"name": name(r)})
                            for r in learned.attribute_rules]})
