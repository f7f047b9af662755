"""Learned points: the model distilled into a points table the rules engine (and a CRM) reads.

A team whose CRM only knows points can still use what the model learnt: this module
writes it as a :class:`~predictive_scoring.config.RulesConfig`, in the same YAML format
as the hand-set tables under ``configs/rules/``, so ``predictive-scoring rules`` and every
scoring path score it unchanged.

How: every rule the engine can express is a candidate with one point (capped event
counts with and without a half-life, attribute values, missing values, numeric
thresholds); the engine itself scores the candidates on the training rows, so the
learned table adds up exactly as the rules engine will add it up. A lasso regression of
the model's log-odds on those columns (standardised, penalty picked by cross-validation)
keeps the few that matter. Its coefficients are log-odds; scaled so that
``points_per_doubling`` points double a lead's odds and rounded to whole points, they are
the table. A capped count is a sum of hinges (``min(count, cap)``), so a few rules on
one event type give any concave or convex shape: the first demo request is worth a lot,
the fifth little. Stage thresholds put the same share of training rows in each stage as
the model's suggested stages do.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.linear_model import Lasso, LassoCV

from predictive_scoring import evaluate
from predictive_scoring.config import AttributeRule, EventRule, NumberOrText, RulesConfig
from predictive_scoring.models.scorer import LeadScorer
from predictive_scoring.rules import score_points
from predictive_scoring.stages import Stage, stage_for_values

LOGIT_CLIP = 1e-6
"""The model's probabilities are clipped to ``[LOGIT_CLIP, 1 - LOGIT_CLIP]`` for log-odds."""


@dataclass(frozen=True)
class LearnSettings:
    """How the points table is learnt.

    Attributes:
        points_per_doubling: Points that double a lead's odds of converting (the scale).
        caps: Event counts each event rule may count up to (hinge points of the shape).
        half_lives_days: Half-lives event rules may decay with (besides none); None: the
            dataset's feature windows.
        numeric_bins: Quantile bins per numeric attribute (thresholds between them).
        min_share: A candidate rule must fire on at least this share of training rows.
        cv_folds: Cross-validation folds (consecutive rows) that pick the lasso penalty.
    """

    points_per_doubling: float = 10.0
    caps: tuple[int, ...] = (1, 3, 10)
    half_lives_days: tuple[int, ...] | None = None
    numeric_bins: int = 10
    min_share: float = 0.005
    cv_folds: int = 3


@dataclass(frozen=True)
class LearnedPoints:
    """A learned points table and how it maps back onto log-odds.

    Attributes:
        rules: The table, ready to write as YAML and to score with the rules engine.
        offset_logodds: Log-odds of a lead with 0 points, so a lead's implied probability
            is ``sigmoid(offset_logodds + points * ln 2 / points_per_doubling)``.
        points_per_doubling: Points that double the odds.
        n_candidates: Candidate rules considered (after dropping rare and repeated ones).
    """

    rules: RulesConfig
    offset_logodds: float
    points_per_doubling: float
    n_candidates: int

    def probability(self, points: np.ndarray) -> np.ndarray:
        """The conversion probability the table implies for a points total."""
        logodds = self.offset_logodds + np.asarray(points, float) * math.log(2) \
            / self.points_per_doubling
        return 1 / (1 + np.exp(-logodds))


# ------------------------------------------------------------------------ model output
def model_logodds(scorer: LeadScorer, frame: pd.DataFrame,
                  events: pd.DataFrame | None) -> np.ndarray:
    """The classifier's log-odds (before calibration, so no ranking is lost to ties).

    Args:
        scorer: The trained scorer.
        frame: Rows to score: the lead fields and, for events-shaped data, ``lead_id``,
            ``created_at`` and ``as_of``.
        events: The leads' events (events shape), or None.
    """
    raw = scorer.pipeline.predict_proba(scorer.features(frame, scorer.encode(frame, events)))
    p = np.clip(raw[:, 1], LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.log(p / (1 - p))


# ------------------------------------------------------------------------ candidates
def candidate_rules(scorer: LeadScorer, train: pd.DataFrame,
                    settings: LearnSettings) -> list[EventRule | AttributeRule]:
    """Every one-point rule the table may use: events, categorical values, numeric bins.

    Event rules come from the model's behaviour vocabulary (each event type and each
    ``(type, detail)`` pair), once per cap in ``settings.caps`` and per half-life (none,
    and each feature window in days). Attribute rules come from the model's attribute
    columns as seen in the training rows: ``eq`` per value held by at least
    ``min_share`` of them, ``gte`` per quantile threshold, ``is_null`` where values
    are missing.

    Args:
        scorer: The trained scorer (its columns and behaviour vocabulary).
        train: The training rows (their attribute columns).
        settings: Caps, bins and the rarity cut.

    Returns:
        Candidate rules with one point each and unique names.
    """
    candidates: list[EventRule | AttributeRule] = list(_event_candidates(scorer, settings))
    behaviour = set(scorer.feature_spec.feature_names) if scorer.feature_spec else set()
    minimum = settings.min_share * len(train)
    for column in scorer.columns.categorical:
        candidates += _categorical_candidates(column, train[column], minimum)
    for column in scorer.columns.numeric:
        if column not in behaviour:
            candidates += _numeric_candidates(column, train[column], settings.numeric_bins,
                                              minimum)
    return _uniquely_named(candidates)


def _event_candidates(scorer: LeadScorer, settings: LearnSettings) -> list[EventRule]:
    spec = scorer.feature_spec
    if spec is None:
        return []
    keys = [(t, None) for t in spec.event_types] + list(spec.detail_keys)
    return [EventRule(name=_event_name(event_type, detail, cap, half_life),
                      event_type=event_type, detail=detail, points=1, cap=cap,
                      half_life_days=half_life)
            for event_type, detail in keys
            for half_life in (None, *(settings.half_lives_days or spec.windows_days))
            for cap in settings.caps]


def _event_name(event_type: str, detail: str | None, cap: int, half_life: int | None) -> str:
    stem = event_type if detail is None else f"{event_type}_{detail}"
    decay = "" if half_life is None else f"_halflife{half_life}d"
    return f"{_safe(stem)}_upto{cap}{decay}"


def _categorical_candidates(column: str, values: pd.Series,
                            minimum: float) -> list[AttributeRule]:
    counts = values.dropna().value_counts()
    rules = [AttributeRule(name=f"{_safe(column)}_{_safe(str(value))}", field=column, op="eq",
                           value=_plain_value(value), points=1)
             for value, count in counts.items() if count >= minimum and len(counts) > 1]
    return rules + _missing_candidate(column, values, minimum)


def _numeric_candidates(column: str, values: pd.Series, bins: int,
                        minimum: float) -> list[AttributeRule]:
    numbers = pd.to_numeric(values, errors="coerce").dropna().to_numpy(float)
    rules = []
    if numbers.size:
        cuts = np.unique(np.quantile(numbers, np.arange(1, bins) / bins, method="lower"))
        for cut in cuts[cuts > numbers.min()]:
            at_least = int((numbers >= cut).sum())
            if minimum <= at_least <= len(numbers) - minimum:
                value = _plain_value(cut)
                rules.append(AttributeRule(name=f"{_safe(column)}_at_least_{_safe(str(value))}",
                                           field=column, op="gte", value=value, points=1))
    return rules + _missing_candidate(column, values, minimum)


def _missing_candidate(column: str, values: pd.Series, minimum: float) -> list[AttributeRule]:
    missing = int(values.isna().sum())
    if minimum <= missing <= len(values) - minimum:
        return [AttributeRule(name=f"{_safe(column)}_missing", field=column, op="is_null",
                              points=1)]
    return []


def _plain_value(value: object) -> NumberOrText:
    """A cell as the YAML scalar a rule compares with (whole floats as ints)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return int(value) if float(value).is_integer() else float(f"{float(value):.6g}")
    return str(value)


def _safe(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_") or "blank"


def _uniquely_named(rules: Sequence[EventRule | AttributeRule]
                    ) -> list[EventRule | AttributeRule]:
    seen: dict[str, int] = {}
    named = []
    for rule in rules:
        count = seen.get(rule.name, 0)
        seen[rule.name] = count + 1
        named.append(rule if count == 0 else rule.model_copy(
            update={"name": f"{rule.name}_{count + 1}"}))
    return named


def informative_columns(matrix: np.ndarray, min_share: float) -> np.ndarray:
    """Indexes of the candidate columns worth fitting: firing on at least ``min_share``
    of the rows (and not on all of them identically), each column kept once."""
    fires = (matrix != 0).mean(axis=0)
    varies = matrix.std(axis=0) > 0
    usable = np.flatnonzero((fires >= min_share) & varies)
    _, first = np.unique(np.round(matrix[:, usable], 9), axis=1, return_index=True)
    return usable[np.sort(first)]


# ------------------------------------------------------------------------ the fit
def distil(matrix: np.ndarray, target: np.ndarray, settings: LearnSettings) -> np.ndarray:
    """Lasso regression of the model's log-odds on the candidate columns.

    Columns are standardised for the fit (so the penalty treats a 0/1 flag and a count
    alike) and the coefficients turned back into log-odds per unit of each column.

    Args:
        matrix: Candidate columns of the training rows, shape ``(rows, candidates)``.
        target: The model's log-odds of the same rows.
        settings: Cross-validation folds.

    Returns:
        Coefficients: log-odds per unit of each column.
    """
    mean, scale = matrix.mean(axis=0), matrix.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    # A precomputed Gram matrix (candidates are few next to rows) makes the path ~6x
    # faster than random coordinate selection on the raw rows, with the same fit.
    lasso = LassoCV(alphas=30, cv=settings.cv_folds, precompute=True, max_iter=5000,
                    tol=1e-3)
    standardised = (matrix - mean) / scale
    lasso.fit(standardised, target)
    refit = Lasso(alpha=_one_standard_error_alpha(lasso), precompute=True, max_iter=5000,
                  tol=1e-3).fit(standardised, target)
    # on a weak signal the sparser fit can keep nothing: then the best fit it is
    coefficients = refit.coef_ if np.any(refit.coef_) else lasso.coef_
    return coefficients / scale


def _one_standard_error_alpha(lasso: LassoCV) -> float:
    """The largest penalty within one standard error of the best cross-validated error:
    fewer rules, as good a fit as the folds can tell apart."""
    errors = lasso.mse_path_.mean(axis=1)
    spread = lasso.mse_path_.std(axis=1) / np.sqrt(lasso.mse_path_.shape[1])
    best = int(np.argmin(errors))
    within = errors <= errors[best] + spread[best]
    return float(lasso.alphas_[within].max())


def to_points(candidates: Sequence[EventRule | AttributeRule], coefficients: np.ndarray,
              points_per_doubling: float) -> tuple[list[EventRule], list[AttributeRule]]:
    """Scale log-odds coefficients to whole points; rules rounding to 0 are left out.

    An event rule's cap scales with its points (``|points| * count cap``), so the rule
    still counts the same number of events.
    """
    factor = points_per_doubling / math.log(2)
    event_rules, attribute_rules = [], []
    for rule, coefficient in zip(candidates, coefficients, strict=True):
        points = round(float(coefficient) * factor)
        if points == 0:
            continue
        if isinstance(rule, EventRule):
            cap = None if rule.cap is None else abs(points) * rule.cap
            event_rules.append(rule.model_copy(update={"points": points, "cap": cap}))
        else:
            attribute_rules.append(rule.model_copy(update={"points": points}))
    return event_rules, attribute_rules


def points_stage_thresholds(points: np.ndarray, shares: dict[Stage, float]
                            ) -> dict[Stage, float]:
    """Stage thresholds on a points total giving each stage its share of the rows.

    The points are mapped monotonically onto [0, 1) so that
    :func:`~predictive_scoring.evaluate.stage_thresholds_matching_shares` can cut them,
    and its cuts mapped back. A stage that holds leads starts at a total some lead has
    (a whole number); an empty stage squeezed between two totals gets a threshold
    between them (e.g. 6.5), which no whole-point total reaches.
    """
    low, span = float(points.min()), float(points.max() - points.min() + 1)
    cuts = evaluate.stage_thresholds_matching_shares((points - low) / span, shares,
                                                     list(shares))
    return {stage: _readable(low + cut * span) for stage, cut in cuts.items()}


def _readable(bar: float) -> float:
    whole = round(bar)
    return float(whole) if abs(bar - whole) < 1e-6 else round(bar, 3)


def stage_shares(stages: np.ndarray, thresholds: dict[Stage, float]) -> dict[Stage, float]:
    """Share of rows in each stage of ``thresholds`` (in funnel order)."""
    counts = pd.Series(stages).value_counts()
    order = sorted(thresholds, key=lambda stage: stage.rank)
    return {stage: float(counts.get(stage.value, 0)) / len(stages) for stage in order}


def learn_points(scorer: LeadScorer, frame: pd.DataFrame, events: pd.DataFrame | None,
                 train_rows: np.ndarray, settings: LearnSettings = LearnSettings()
                 ) -> LearnedPoints:
    """Distil a trained scorer into a points table.

    Args:
        scorer: The trained scorer.
        frame: Its examples (lead fields; events shape also ``lead_id``, ``created_at``
            and ``as_of``).
        events: The leads' events (events shape), or None.
        train_rows: Positions in ``frame`` of the rows to learn from (the training slice).
        settings: Scale, candidates and fit settings.

    Returns:
        The learned table, its stage thresholds matching the model's stage shares on the
        training rows.
    """
    train = frame.iloc[train_rows]
    target = model_logodds(scorer, train, events)
    candidates = candidate_rules(scorer, train, settings)
    matrix = _rule_matrix(candidates, train, events)
    keep = informative_columns(matrix, settings.min_share)
    kept = [candidates[i] for i in keep]
    coefficients = distil(matrix[:, keep], target, settings)
    event_rules, attribute_rules = to_points(kept, coefficients, settings.points_per_doubling)
    unstaged = RulesConfig(name="learned_points", event_rules=event_rules,
                           attribute_rules=attribute_rules, stage_thresholds={})
    points = score_points(unstaged, train, events).points
    p_train = scorer.calibrator(1 / (1 + np.exp(-target)))
    shares = stage_shares(stage_for_values(p_train, scorer.stage_thresholds),
                          scorer.stage_thresholds)
    rules = unstaged.model_copy(update={
        "description": _description(scorer, settings, len(kept)),
        "stage_thresholds": points_stage_thresholds(points, shares)})
    offset = _offset(points, target, settings.points_per_doubling)
    return LearnedPoints(rules, offset, settings.points_per_doubling, len(kept))


def _rule_matrix(rules: Sequence[EventRule | AttributeRule], frame: pd.DataFrame,
                 events: pd.DataFrame | None) -> np.ndarray:
    """What each one-point rule gives each row, scored by the rules engine itself."""
    config = RulesConfig(name="candidates", stage_thresholds={},
                         event_rules=[r for r in rules if isinstance(r, EventRule)],
                         attribute_rules=[r for r in rules if isinstance(r, AttributeRule)])
    return score_points(config, frame, events).per_rule


def _offset(points: np.ndarray, target: np.ndarray, points_per_doubling: float) -> float:
    """Log-odds at zero points: the mean gap between the model and the scaled points."""
    return float(np.mean(target - points * math.log(2) / points_per_doubling))


def _description(scorer: LeadScorer, settings: LearnSettings, n_candidates: int) -> str:
    kind = scorer.metadata.get("model_kind", "model")
    return (f"Learned from the {kind} model of '{scorer.dataset}': a lasso fit of its "
            f"log-odds on {n_candidates} candidate rules, scaled so that "
            f"{settings.points_per_doubling:g} points double a lead's odds. Stage thresholds "
            "give each stage the model's share of training leads.")


def comparison(scorer: LeadScorer, learned: LearnedPoints, frame: pd.DataFrame,
               events: pd.DataFrame | None, label: np.ndarray, hand_points: np.ndarray,
               handoff_volume: int) -> pd.DataFrame:
    """Model, learned points and hand-set points ranked on the same rows.

    Args:
        scorer: The trained scorer.
        learned: Its learned points table.
        frame: The rows to compare on (the test slice), as for :func:`learn_points`.
        events: The leads' events (events shape), or None.
        label: Their outcomes (0/1).
        hand_points: The hand-set points of the same rows.
        handoff_volume: Leads handed to sales (the hand-set rules' MQL+ count).

    Returns:
        :func:`~predictive_scoring.evaluate.ranking_table` with rows ``model``,
        ``learned points`` and ``hand-set points``.
    """
    probability = scorer.probability(scorer.features(frame, scorer.encode(frame, events)))
    learned_total = score_points(learned.rules, frame, events).points
    return evaluate.ranking_table(label, {"model": probability,
                                          "learned points": learned_total,
                                          "hand-set points": hand_points}, handoff_volume)


# ------------------------------------------------------------------------ output
def rules_yaml(rules: RulesConfig, header: str) -> str:
    """The table as YAML in the layout of ``configs/rules/*.yaml`` (one rule per line)."""
    body = rules.model_dump(mode="json", exclude_defaults=True)
    lines = [*(f"# {line}" for line in header.splitlines()), f"name: {body['name']}",
             "description: >-", *textwrap.wrap(body.get("description", ""), 86,
                                               initial_indent="  ", subsequent_indent="  ")]
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
