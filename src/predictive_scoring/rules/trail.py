"""The points' audit trail: what each rule gave each scored row, its totals and stages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from predictive_scoring.config import STARTING_POINTS, RulesConfig
from predictive_scoring.stages import stage_for_values


@dataclass(frozen=True)
class PointsResult:
    """Points per scored row with the audit trail of what each rule gave.

    Attributes:
        points: Total points per row; always exactly ``per_rule.sum(axis=1)``.
        stage: Stage per row from the rules' stage thresholds (plain strings).
        rule_names: Rule names in column order of ``per_rule`` (event rules first).
        per_rule: Points each rule gave each row, shape ``(rows, rules)``.
    """

    points: np.ndarray
    stage: np.ndarray
    rule_names: tuple[str, ...]
    per_rule: np.ndarray

    def __post_init__(self) -> None:
        if self.per_rule.shape != (len(self.points), len(self.rule_names)):
            raise ValueError(f"per_rule has shape {self.per_rule.shape}; expected "
                             f"({len(self.points)}, {len(self.rule_names)}) for "
                             f"{len(self.points)} rows and rules {list(self.rule_names)}")
        if self.points.ndim != 1 or not (self.points == self.per_rule.sum(axis=1)).all():
            raise ValueError("points must equal per_rule.sum(axis=1); build the result "
                             "with PointsResult.from_trail")

    @classmethod
    def from_trail(cls, per_rule: np.ndarray, rule_names: Sequence[str],
                   rules: RulesConfig) -> PointsResult:
        """The result of a per-rule trail: totals are its row sums, stages their mapping.

        Without stage thresholds (a scorer without rules) every stage is None.
        """
        points = per_rule.sum(axis=1)
        stage = (stage_for_values(points, rules.stage_thresholds) if rules.stage_thresholds
                 else np.full(len(points), None, dtype=object))
        return cls(points, stage, tuple(rule_names), per_rule)

    @classmethod
    def from_parts(cls, event_points: np.ndarray, attribute_points: np.ndarray,
                   rule_names: Sequence[str], rules: RulesConfig) -> PointsResult:
        """The result of the event rules' and the attribute rules' points (in that order),
        after the table's ``starting_points`` when it has any (every lead's first entry in
        the trail)."""
        parts = (event_points, attribute_points)
        if rules.starting_points:
            parts = (np.full((len(event_points), 1), float(rules.starting_points)), *parts)
        return cls.from_trail(np.concatenate(parts, axis=1), rule_names, rules)

    def fired(self) -> list[list[tuple[str, float]]]:
        """Per row, the rules that gave non-zero points, as ``(rule name, points)``."""
        fired: list[list[tuple[str, float]]] = [[] for _ in range(len(self.points))]
        for row, column, points in self._non_zero():
            fired[row].append((self.rule_names[column], points))
        return fired

    def fired_text(self) -> list[str]:
        """Per row, e.g. ``"demo_request +16; email_open +4.0; student -15"``.

        Points are rounded to one decimal (whole numbers show none); rules whose
        points round to zero are left out, so an old, decayed email open is no noise.
        """
        parts: list[list[str]] = [[] for _ in range(len(self.points))]
        for row, column, points in self._non_zero():
            shown = _signed(points)
            if shown is not None:
                parts[row].append(f"{self.rule_names[column]} {shown}")
        return ["; ".join(row) for row in parts]

    def _non_zero(self) -> Iterable[tuple[int, int, float]]:
        rows, columns = np.nonzero(self.per_rule)
        return zip(rows.tolist(), columns.tolist(), self.per_rule[rows, columns].tolist(),
                   strict=True)


def _signed(points: float) -> str | None:
    """``+16``, ``+4.0``, ``-2.5``; None when the points round to zero."""
    if points.is_integer():
        return f"{points:+.0f}"
    shown = f"{points:+.1f}"
    return None if shown[1:] == "0.0" else shown


def rule_names(rules: RulesConfig) -> tuple[str, ...]:
    """Rule names in trail order: the starting points (when not 0), event rules, then
    attribute rules."""
    start = (STARTING_POINTS,) if rules.starting_points else ()
    return start + tuple(rule.name for rule in [*rules.event_rules, *rules.attribute_rules])

