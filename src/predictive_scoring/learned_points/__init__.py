"""Learned points: the model distilled into a points table a CRM admin can read and type.

A team whose CRM only knows points can still use what the model learnt: this package
writes it as a :class:`~predictive_scoring.config.RulesConfig`, in the same YAML format
as the hand-set tables under ``configs/rules/``, so ``predictive-scoring rules`` and every
scoring path score it unchanged. The table is built to be typed into a CRM by hand:

- at most ``max_rules`` rules (25), **one per signal** (an event type, an event type with
  one detail, a set of values or a range of an attribute, an empty attribute), no two
  counting the same event or value;
- whole points, each rule's sign the model's own direction for its signal: for an event,
  the sign of the change of the model's log-odds when a lead gets one more such event
  now (:mod:`.effects`; a signal that moves it by less than 0.01 gets no rule); for a set
  of an attribute's values, the sign of the change of the model's log-odds when a lead's
  value becomes one of them rather than the most common other value; for a range or an
  empty attribute, the sign of the model's SHAP contributions along the rule; an optional
  cap and half-life from a small set;
- no rule on events the company sends itself (email sends) unless adding it raises the
  training leads' ROC-AUC by ``own_event_min_auc_gain`` (0.01): a send aimed at
  interested leads carries signal, a newsletter to everyone does not;
- names like the hand-set ones, a one-line description each, and the names of the
  current rules where a learned rule edits one (:mod:`.edits`);
- whole, increasing stage thresholds from 0 that give each stage the model's share of
  training leads.

How: every candidate rule (:mod:`.candidates`) is scored by the rules engine itself on
(a sample of) the training rows, so the table adds up exactly as the engine will add it
up; a sign-constrained forward selection (:mod:`.fit`) fits the model's log-odds with
them; coefficients scaled so that ``points_per_doubling`` points double a lead's odds and
rounded are the points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from predictive_scoring import evaluate, explain
from predictive_scoring.config import AttributeRule, EventRule, RulesConfig
from predictive_scoring.learned_points import fit, wording
from predictive_scoring.learned_points.candidates import (
    Candidate,
    CandidateSettings,
    categorical_candidates,
    details_by_type,
    event_candidates,
    numeric_candidates,
)
from predictive_scoring.learned_points.edits import adopt_names, table_edits, threshold_edits
from predictive_scoring.learned_points.effects import (
    EFFECT_ROWS,
    MIN_EFFECT,
    event_directions,
    fresh_event_effects,
    key_probes,
    model_logodds,
    probe_rows,
    value_logodds,
    value_set_direction,
)
from predictive_scoring.learned_points.table import (
    rules_yaml,
    stage_shares,
    whole_stage_thresholds,
    write_rules,
)
from predictive_scoring.models.scorer import LeadScorer
from predictive_scoring.rules import score_points
from predictive_scoring.stages import stage_for_values

__all__ = ["CandidateSettings", "LearnSettings", "LearnedPoints", "candidate_rules",
           "comparison", "learn_points", "model_logodds", "rules_yaml", "stage_shares",
           "table_edits", "threshold_edits", "to_rules", "whole_stage_thresholds",
           "write_rules"]


@dataclass(frozen=True)
class LearnSettings:
    """How the points table is learnt.

    Attributes:
        max_rules: Most rules in the table.
        points_per_doubling: Points that double a lead's odds of converting (the scale).
        min_gain: A rule enters only if it removes at least this share of the weighted
            squared error of the model's log-odds.
        own_event_min_auc_gain: A rule on an event the company sends itself enters only
            if it raises the training leads' ROC-AUC by at least this much.
        max_rows: Most training rows the table is learnt from (a seeded sample).
        seed: Seed of that sample (and of the rows the event effects are measured on).
        effect_rows: Most training rows (one per lead) an event signal's effect is
            measured on (:mod:`.effects`).
        min_effect: Least mean change of the model's log-odds one fresh event of a
            signal must make for the signal to have a direction (and a rule).
        candidates: Which candidate rules are considered.
    """

    max_rules: int = 25
    points_per_doubling: float = 10.0
    min_gain: float = 1e-4
    own_event_min_auc_gain: float = 0.01
    max_rows: int = 50_000
    seed: int = 7
    effect_rows: int = EFFECT_ROWS
    min_effect: float = MIN_EFFECT
    candidates: CandidateSettings = field(default_factory=CandidateSettings)


@dataclass(frozen=True)
class LearnedPoints:
    """A learned points table and how it maps back onto log-odds.

    Attributes:
        rules: The table, ready to write as YAML and to score with the rules engine.
        offset_logodds: Log-odds of a lead with 0 points, so a lead's implied probability
            is ``sigmoid(offset_logodds + points * ln 2 / points_per_doubling)``.
        points_per_doubling: Points that double the odds.
        n_candidates: Candidate rules considered.
        fidelity: Share of the (weighted) variance of the model's log-odds on the training
            rows the table reproduces (its R² before rounding).
        own_events: The company's own event types among the candidates, and whether the
            table kept a rule on them.
    """

    rules: RulesConfig
    offset_logodds: float
    points_per_doubling: float
    n_candidates: int
    fidelity: float
    own_events: dict[str, bool]

    def probability(self, points: np.ndarray) -> np.ndarray:
        """The conversion probability the table implies for a points total."""
        logodds = self.offset_logodds + np.asarray(points, float) * math.log(2) \
            / self.points_per_doubling
        return 1 / (1 + np.exp(-logodds))


ATTRIBUTION_ROWS = 10_000
"""Training rows (a seeded sample) whose SHAP values give each attribute candidate's
direction and order the categorical values: mean contributions are stable at this size,
and SHAP values cost far more per row than the rest of the fit."""


# ------------------------------------------------------------------------ candidates
def candidate_rules(scorer: LeadScorer, train: pd.DataFrame, events: pd.DataFrame | None,
                    contributions: explain.Contributions,
                    settings: CandidateSettings) -> list[Candidate]:
    """Every one-point rule the table may use: events, categorical sets, numeric ranges.

    Args:
        scorer: The trained scorer (its columns and behaviour vocabulary).
        train: Training rows (their attribute columns).
        events: The leads' events (events shape), or None.
        contributions: The model's contributions on ``train`` (they order categorical
            values).
        settings: Which candidates.
    """
    candidates: list[Candidate] = []
    if scorer.feature_spec is not None and events is not None:
        own_leads = events.loc[events["lead_id"].isin(train["lead_id"])]
        candidates += event_candidates(scorer.feature_spec, details_by_type(own_leads),
                                       settings)
    position = {name: j for j, name in enumerate(contributions.fields)}
    behaviour = set(scorer.columns.behaviour)
    for column in scorer.columns.categorical:
        candidates += categorical_candidates(column, train[column],
                                             contributions.values[:, position[column]],
                                             settings)
    for column in scorer.columns.numeric:
        if column not in behaviour:
            candidates += numeric_candidates(column, train[column], settings)
    return candidates


def _rule_matrix(candidates: Sequence[Candidate], frame: pd.DataFrame,
                 events: object) -> np.ndarray:
    """What each one-point candidate gives each row, scored by the rules engine itself."""
    config = RulesConfig(name="candidates", stage_thresholds={},
                         event_rules=[c.rule for c in candidates if isinstance(c.rule, EventRule)],
                         attribute_rules=[c.rule for c in candidates
                                          if isinstance(c.rule, AttributeRule)])
    return score_points(config, frame, events).per_rule


def _attribution(candidates: Sequence[Candidate],
                 contributions: explain.Contributions) -> np.ndarray:
    """Per attribute candidate, the model's contribution for its signal (its sources
    summed)."""
    position = {name: j for j, name in enumerate(contributions.fields)}
    summed: dict[tuple[str, ...], np.ndarray] = {}
    for candidate in candidates:
        if candidate.sources not in summed:
            columns = [position[s] for s in candidate.sources]
            summed[candidate.sources] = contributions.values[:, columns].sum(axis=1)
    return np.column_stack([summed[c.sources] for c in candidates])


# ------------------------------------------------------------------------ learning
@dataclass(frozen=True)
class _Sample:
    """The training rows a table is learnt from, with the model's view of them.

    Attributes:
        rows: Their positions in the examples frame.
        train: The rows (index 0..n-1).
        encoded: Their events, encoded once for features and rules (events shape).
        target: The model's raw log-odds of each row.
        explained: Positions in ``train`` of the rows with SHAP values.
        contributions: The model's contributions on those rows.
    """

    rows: np.ndarray
    train: pd.DataFrame
    encoded: object
    target: np.ndarray
    explained: np.ndarray
    contributions: explain.Contributions


def learn_points(scorer: LeadScorer, frame: pd.DataFrame, events: pd.DataFrame | None,
                 train_rows: np.ndarray, label: np.ndarray,
                 settings: LearnSettings = LearnSettings()) -> LearnedPoints:
    """Distil a trained scorer into a points table.

    Args:
        scorer: The trained scorer; its rules are the table in use, whose rule names the
            learned rules that edit them keep.
        frame: Its examples (lead fields; events shape also ``lead_id``, ``created_at``
            and ``as_of``).
        events: The leads' events (events shape), or None.
        train_rows: Positions in ``frame`` of the rows to learn from (the training slice).
        label: The outcome (0/1) of every row of ``frame``.
        settings: Size, scale, candidates and fit settings.

    Returns:
        The learned table, its stage thresholds matching the model's stage shares on the
        training rows.
    """
    sample = _sample(scorer, frame, events, train_rows, settings)
    candidates = candidate_rules(scorer, sample.train.iloc[sample.explained], events,
                                 sample.contributions, settings.candidates)
    matrix = _rule_matrix(candidates, sample.train, sample.encoded)
    direction = _directions(scorer, candidates, matrix, sample, events, settings)
    summary = fit.design(matrix, sample.target, fit.fit_weights(sample.target), direction)
    usable = ((matrix != 0).mean(axis=0) >= settings.candidates.min_share) & (direction != 0)
    chosen = _select(summary, candidates, usable, matrix, label[sample.rows], settings)
    return _learned(scorer, candidates, chosen, summary, sample, settings)


def _sample(scorer: LeadScorer, frame: pd.DataFrame, events: pd.DataFrame | None,
            train_rows: np.ndarray, settings: LearnSettings) -> _Sample:
    rows = train_rows[explain.sample_rows(len(train_rows), settings.max_rows, settings.seed)]
    train = frame.iloc[rows].reset_index(drop=True)
    encoded = scorer.encode(train, events)
    features = scorer.features(train, encoded)
    explained = explain.sample_rows(len(train), ATTRIBUTION_ROWS, settings.seed)
    return _Sample(rows, train, encoded, model_logodds(scorer, features), explained,
                   explain.contributions(scorer, features.iloc[explained]))


def _directions(scorer: LeadScorer, candidates: list[Candidate], matrix: np.ndarray,
                sample: _Sample, events: pd.DataFrame | None,
                settings: LearnSettings) -> np.ndarray:
    """The model's direction for each candidate (+1, -1, or 0: none): an event signal's
    from the model's change when a lead gets one more such event now, a set of values'
    from its change when a lead's value becomes one of them rather than the most common
    other value (:mod:`.effects`, on the same leads), a range's or an empty attribute's
    from its SHAP contributions along the rule (:func:`fit.directions`)."""
    direction = np.zeros(len(candidates))
    on_events = np.array([isinstance(c.rule, EventRule) for c in candidates], dtype=bool)
    value_sets = np.array([isinstance(c.rule, AttributeRule) and c.rule.op in ("eq", "in")
                           for c in candidates], dtype=bool)
    others = np.flatnonzero(~on_events & ~value_sets)
    if others.size:
        direction[others] = fit.directions(
            matrix[np.ix_(sample.explained, others)],
            _attribution([candidates[j] for j in others], sample.contributions))
    leads = sample.train.iloc[probe_rows(sample.train, settings.effect_rows,
                                         settings.seed)].reset_index(drop=True)
    if value_sets.any():
        features = scorer.features(leads, scorer.encode(leads, events))
        for column in {candidates[j].field for j in np.flatnonzero(value_sets)}:
            counts = sample.train[column].dropna().value_counts()
            shares = {str(v): n / counts.sum() for v, n in counts.items()}
            logodds = value_logodds(scorer, features, column, list(counts.index))
            for j in np.flatnonzero(value_sets):
                if candidates[j].field == column:
                    counted = sorted(map(str, candidates[j].atoms))
                    reference = next((str(v) for v in counts.index
                                      if str(v) not in counted), None)
                    direction[j] = 0.0 if reference is None else value_set_direction(
                        counted, reference, logodds, shares, settings.min_effect)
    if on_events.any():
        own = events.loc[events["lead_id"].isin(sample.train["lead_id"])]
        probes = key_probes(scorer.feature_spec, own)
        effects = fresh_event_effects(scorer, leads, own, probes)
        direction[on_events] = event_directions(
            [c.keys for c in candidates if isinstance(c.rule, EventRule)], effects, probes,
            settings.min_effect)
    return direction


def _select(summary: fit.Design, candidates: list[Candidate], usable: np.ndarray,
            matrix: np.ndarray, y: np.ndarray, settings: LearnSettings) -> list[int]:
    """The rules: the best fit without the company's own sends, then each send admitted
    only if it raises the training ROC-AUC by ``own_event_min_auc_gain``."""
    own = np.array([c.own for c in candidates], dtype=bool)
    chosen = fit.forward_select(summary, candidates, usable & ~own, settings.max_rules,
                                settings.min_gain)
    chosen = fit.refine(summary, candidates, usable & ~own, chosen)

    def ranks_better(with_own: list[int], without: list[int]) -> bool:
        gain = _auc(y, matrix, summary, with_own) - _auc(y, matrix, summary, without)
        return gain >= settings.own_event_min_auc_gain

    return fit.admit_if(summary, candidates, usable & own, chosen, settings.max_rules,
                        ranks_better)


def _learned(scorer: LeadScorer, candidates: list[Candidate], chosen: list[int],
             summary: fit.Design, sample: _Sample, settings: LearnSettings) -> LearnedPoints:
    """The chosen rules as a named table with whole stage thresholds from 0."""
    coefficients, error = fit.fit(summary, chosen)
    table = adopt_names(scorer.rules, to_rules(
        [candidates[j] for j in chosen], summary.direction[chosen] * coefficients,
        settings.points_per_doubling))
    points = score_points(table, sample.train, sample.encoded).points
    probability = scorer.calibrator(1 / (1 + np.exp(-sample.target)))
    shares = stage_shares(stage_for_values(probability, scorer.stage_thresholds),
                          scorer.stage_thresholds)
    thresholds, starting_points = whole_stage_thresholds(points, shares)
    rules = table.model_copy(update={
        "description": _description(scorer, settings, len(candidates)),
        "starting_points": starting_points, "stage_thresholds": thresholds})
    kept = {rule.event_type for rule in rules.event_rules}
    own = sorted({c.field for c in candidates if c.own})
    return LearnedPoints(
        rules, _offset(points + starting_points, sample.target, settings.points_per_doubling),
        settings.points_per_doubling, len(candidates), 1 - error / summary.total,
        {event_type: event_type in kept for event_type in own})


def _auc(y: np.ndarray, matrix: np.ndarray, summary: fit.Design, chosen: list[int]) -> float:
    """Training ROC-AUC of a table's (unrounded) totals."""
    coefficients, _ = fit.fit(summary, chosen)
    totals = matrix[:, chosen] @ (summary.direction[chosen] * coefficients)
    return float(roc_auc_score(y, totals)) if len(np.unique(y)) == 2 else 0.5


def to_rules(chosen: Sequence[Candidate], logodds: np.ndarray,
             points_per_doubling: float) -> RulesConfig:
    """Scale log-odds per unit to whole points, name and describe the rules; rules
    rounding to 0 points are left out.

    An event rule's cap scales with its points (``|points| * events``), so the rule
    still counts the same number of events.
    """
    factor = points_per_doubling / math.log(2)
    event_rules, attribute_rules = [], []
    for candidate, per_unit in zip(chosen, logodds, strict=True):
        points = round(float(per_unit) * factor)
        if points == 0:
            continue
        rule = candidate.rule
        if isinstance(rule, EventRule):
            events = None if rule.cap is None else int(rule.cap)
            sized = rule.model_copy(update={"points": points, "cap": None if events is None
                                            else abs(points) * events})
            event_rules.append(sized.model_copy(update={
                "name": wording.event_name(sized),
                "description": wording.event_description(sized, events, candidate.own)}))
        else:
            sized = rule.model_copy(update={"points": points})
            attribute_rules.append(sized.model_copy(update={
                "name": wording.attribute_name(sized),
                "description": wording.attribute_description(sized)}))
    named = _unique_names([*event_rules, *attribute_rules])
    return RulesConfig(name="learned_points", stage_thresholds={},
                       event_rules=named[:len(event_rules)],
                       attribute_rules=named[len(event_rules):])


def _unique_names(rules: list[EventRule | AttributeRule]) -> list[EventRule | AttributeRule]:
    seen: dict[str, int] = {}
    named = []
    for rule in rules:
        count = seen.get(rule.name, 0)
        seen[rule.name] = count + 1
        named.append(rule if count == 0 else rule.model_copy(
            update={"name": f"{rule.name}_{count + 1}"}))
    return named


def _offset(points: np.ndarray, target: np.ndarray, points_per_doubling: float) -> float:
    """Log-odds at zero points: the mean gap between the model and the scaled points."""
    return float(np.mean(target - points * math.log(2) / points_per_doubling))


def _description(scorer: LeadScorer, settings: LearnSettings, n_candidates: int) -> str:
    kind = scorer.metadata.get("model_kind", "model")
    return (f"Learned from the {kind} model of '{scorer.dataset}': at most "
            f"{settings.max_rules} rules, one per signal, chosen from {n_candidates} "
            f"candidates to follow the model's log-odds, each with the model's sign (an "
            "event's: what one more such event now does to the model's score); "
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
