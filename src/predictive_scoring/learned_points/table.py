"""The learned table's stage thresholds and its YAML file."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from predictive_scoring.config import RulesConfig
from predictive_scoring.stages import Stage


def stage_shares(stages: np.ndarray, thresholds: dict[Stage, float]) -> dict[Stage, float]:
    """Share of rows in each stage of ``thresholds`` (in funnel order)."""
    counts = pd.Series(stages).value_counts()
    order = sorted(thresholds, key=lambda stage: stage.rank)
    return {stage: float(counts.get(stage.value, 0)) / len(stages) for stage in order}


SHIFT_STEP = 5
"""Starting points are a multiple of this (the scale reads rounder; stages do not move)."""


def whole_stage_thresholds(points: np.ndarray, shares: dict[Stage, float]
                           ) -> tuple[dict[Stage, float], int]:
    """Whole, strictly increasing stage thresholds from 0 that give each stage (in funnel
    order) about its share of the rows, and the starting points that make them so.

    Each stage after the first starts at the whole number whose count of rows at or above
    it is nearest the stage's target (a tie: the lower number), and at least one above the
    stage before, so a stage squeezed out by ties stays in the funnel, empty. When the
    second stage would start at 0 or below (many leads hold negative totals), every lead
    gets the same starting points, a multiple of :data:`SHIFT_STEP`, so that it starts at
    1 or more: the stages hold the same leads, on a scale from 0. The first stage's
    threshold is 0, a floor (a total below every threshold lands in the first stage).

    Args:
        points: Points totals of the rows, without starting points (fractions where
            half-lives decay them).
        shares: Share of rows per stage, in funnel order; they sum to 1.

    Returns:
        Threshold per stage (floats holding whole numbers) and the starting points.
    """
    stages = list(shares)
    ordered = np.sort(np.asarray(points, dtype=float))
    n = len(ordered)
    bars = np.arange(int(np.floor(ordered[0])), int(np.ceil(ordered[-1])) + 2)
    at_or_above = n - np.searchsorted(ordered, bars, side="left")
    targets = n * np.cumsum([shares[s] for s in stages][::-1])[::-1][1:]
    natural: list[int] = []
    for target in targets:
        best = int(bars[np.argmin(np.abs(at_or_above - target))])
        natural.append(best if not natural else max(best, natural[-1] + 1))
    shift = 0 if not natural or natural[0] >= 1 else \
        SHIFT_STEP * math.ceil((1 - natural[0]) / SHIFT_STEP)
    thresholds = [0, *(bar + shift for bar in natural)]
    return {stage: float(bar) for stage, bar in zip(stages, thresholds, strict=True)}, shift


def rules_yaml(rules: RulesConfig, header: str) -> str:
    """The table as YAML in the layout of ``configs/rules/*.yaml`` (one rule per line)."""
    body = rules.model_dump(mode="json", exclude_defaults=True)
    lines = [*(f"# {line}" for line in header.splitlines()), f"name: {body['name']}"]
    if body.get("description"):
        lines += ["description: >-", *textwrap.wrap(body["description"], 86,
                                                    initial_indent="  ",
                                                    subsequent_indent="  ")]
    if body.get("starting_points"):
        lines += ["", "# every lead starts with these points (the scale's shift to 0)",
                  f"starting_points: {_number(body['starting_points'])}"]
    for section in ("event_rules", "attribute_rules"):
        if body.get(section):
            lines += ["", f"{section}:"]
            lines += [f"  - {_flow(rule)}" for rule in body[section]]
    lines += ["", "stage_thresholds:"]
    lines += [f"  {stage}: {_number(bar)}" for stage, bar in body["stage_thresholds"].items()]
    return "\n".join(lines) + "\n"


def _flow(rule: dict) -> str:
    whole = {key: int(value) if isinstance(value, float) and value.is_integer() else value
             for key, value in rule.items()}
    return yaml.safe_dump(whole, default_flow_style=True, sort_keys=False,
                          width=10_000).strip()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def write_rules(rules: RulesConfig, path: Path, header: str) -> Path:
    """Write the table to ``path`` (folders created); it loads with ``load_config``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rules_yaml(rules, header), encoding="utf-8")
    return path
