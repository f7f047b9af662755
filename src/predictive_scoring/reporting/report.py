"""The marketing-ops comparison report: one self-contained HTML file, model vs points.

Everything is computed on the test slice (leads the model never saw), from the same
functions the rest of the project uses: metrics and stage tables from
:mod:`~predictive_scoring.evaluate`, the accuracy page from
:mod:`~predictive_scoring.accuracy`, figures from the ``reporting`` plot modules, the
learned points table and its edits from :mod:`~predictive_scoring.learned_points`.
:func:`report_data` gathers the numbers and :func:`figures` draws them; the HTML (styles
inline, figures as base64 PNGs, so the file opens anywhere, offline) is written by
:mod:`~predictive_scoring.reporting.sections`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from predictive_scoring import evaluate, explain
from predictive_scoring.accuracy import accuracy_page
from predictive_scoring.config import Capacity, RulesConfig
from predictive_scoring.explain import GlobalWeights
from predictive_scoring.learned_points import LearnedPoints, table_edits, threshold_edits
from predictive_scoring.models.scorer import LeadScorer, score_0_100
from predictive_scoring.reporting import accuracy_plots, driver_plots, plots
from predictive_scoring.rules import score_points
from predictive_scoring.stages import FUNNEL, Stage, stage_for_values
from predictive_scoring.train import Examples, lead_age_days

N_EXAMPLE_LEADS = 5
"""Leads shown in each of the over-rated and under-rated example tables."""

FEW_TEST_CONVERSIONS = 40
"""Below this many converted test leads the figures are flagged as noisy."""

N_REASONS = 3
"""Reasons up and reasons down shown for each example lead."""

ECE_BINS = 10
"""Equal-frequency bins of the calibration error per lead-age band."""

SEGMENTS = {"quadrant": ("quadrant", ("sales-ready", "nurture", "check fit", "low priority")),
            "fit_grade": ("fit grade", tuple(reversed(explain.FIT_GRADES))),
            "engagement": ("engagement", tuple(reversed(explain.ENGAGEMENT_LEVELS)))}
"""Column of :func:`explain.fit_engagement` -> (its name in the report, its values best
first)."""


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, computed on the test slice.

    Attributes:
        title: The dataset and model, e.g. ``simulated: lightgbm``.
        facts: Short label -> value lines for the header (dataset, model, test leads...).
        y: Outcomes of the test leads.
        probability: The model's calibrated probability per test lead.
        model_stage: The model's suggested stage per test lead.
        rule_points: The hand-set points per test lead.
        rule_stage: The hand-set points' stage per test lead.
        learned_points: The learned points per test lead.
        order: The stages the rules define, in funnel order.
        handoff: The first stage handed to sales.
        ranking: Model, learned and hand-set points ranked on the test leads.
        hand_rules: The hand-set points table (the current table).
        learned: The learned points table.
        edits: The learned table as edits to the current one
            (:func:`~predictive_scoring.learned_points.table_edits`).
        threshold_edits: Stage thresholds, current against learned.
        accuracy: The accuracy page (``metrics.json``'s ``accuracy_page`` block).
        funnel: Leads reaching each stage in the whole dataset (events shape), or None.
        weights: The model's global weights on (a sample of) the test leads.
        explained: :func:`explain.fit_engagement` of every test lead.
        quadrant_cuts: The fit and engagement log-odds that split the quadrants (the
            training leads' medians), or None when the model lacks one of the groups.
        examples: Leads the rules over- and under-rate, with both scores and the model's
            reasons.
        warnings: Data and leakage warnings.
        notes: What was left out, and why.
        promotion: The training run's ``promotion`` and ``promotion_preview`` blocks
            (keys ``promotion`` and ``preview``), or None (a report of a registered model).
        by_age: The model and the points per lead-age band on the test leads
            (:func:`~predictive_scoring.evaluate.by_age`); empty for a table.
        accounts: The account step's result
            (``predictive_scoring.accounts.training.AccountRun``), or None.
    """

    title: str
    facts: dict[str, str]
    y: np.ndarray
    probability: np.ndarray
    model_stage: np.ndarray
    rule_points: np.ndarray
    rule_stage: np.ndarray
    learned_points: np.ndarray
    order: list[str]
    handoff: str
    ranking: pd.DataFrame
    hand_rules: RulesConfig
    learned: LearnedPoints
    edits: pd.DataFrame
    threshold_edits: pd.DataFrame
    accuracy: dict[str, Any]
    funnel: pd.DataFrame | None
    weights: GlobalWeights
    explained: pd.DataFrame
    quadrant_cuts: tuple[float, float] | None
    examples: pd.DataFrame
    warnings: list[str]
    notes: list[str]
    promotion: dict[str, Any] | None = None
    by_age: list[dict[str, Any]] = field(default_factory=list)
    accounts: Any = None


# ------------------------------------------------------------------------ gathering
def report_data(scorer: LeadScorer, examples: Examples, rows: dict[str, np.ndarray],
                events: pd.DataFrame | None, learned: LearnedPoints, weights: GlobalWeights,
                handoff: Stage, capacity: Capacity, funnel: pd.DataFrame | None,
                warnings: Sequence[str], notes: Sequence[str],
                promotion: dict[str, Any] | None = None) -> ReportData:
    """Score the test slice with the model, the hand-set and the learned points.

    Args:
        scorer: The trained scorer.
        examples: Its examples (from training, or rebuilt with ``examples_for_scorer``).
        rows: Row positions of the slices; the report reads ``rows["test"]``.
        events: The leads' events (events shape), or None.
        learned: The learned points table.
        weights: The model's global weights on the test leads (the training run's
            ``weights``, or ``train.test_weights``).
        handoff: The first stage handed to sales.
        capacity: The leads sales can take (the accuracy page's second threshold).
        funnel: ``stages.funnel_conversion`` of the dataset (events shape), or None.
        warnings: Data and leakage warnings.
        notes: What was left out of the data, and why.
        promotion: The training run's promotion and its preview (see
            :attr:`ReportData.promotion`), or None.
    """
    test = rows["test"]
    frame = examples.frame.iloc[test].reset_index(drop=True)
    y = examples.label[test]
    features = scorer.features(frame, scorer.encode(frame, events))
    probability = scorer.probability(features)
    model_stage = stage_for_values(probability, scorer.stage_thresholds)
    order = [s.value for s in FUNNEL if s in scorer.rules.stage_thresholds]
    rule_points, rule_stage = examples.rule_points[test], examples.rule_stage[test]
    learned_points = score_points(learned.rules, frame, events).points
    volume = evaluate.volume_of_stages(rule_stage, handoff.value, order)
    scores = {"model": probability, "learned points": learned_points,
              "hand-set points": rule_points}
    ranking = evaluate.ranking_table(y, scores, volume)
    accuracy = accuracy_page(y, scores, test_times(examples, test), volume, handoff.value,
                             capacity)
    chosen = rated_examples(probability, model_stage, rule_stage, order, handoff.value)
    picked = chosen["row"].to_numpy()
    shown = lead_rows(frame.iloc[picked], y[picked], probability[picked], model_stage[picked],
                      scorer.rules, events)
    shown = pd.concat([shown, lead_reasons(scorer, features.iloc[picked], N_REASONS)], axis=1)
    facts = {"dataset": scorer.dataset, "model": scorer.metadata.get("model_kind", "?"),
             "trained": str(scorer.metadata.get("trained_at", "?")),
             "test leads": f"{len(test):,} ({y.mean():.1%} converted)",
             "hand-off stage": f"{handoff.value} and later ({volume:,} test leads by the "
                               "hand-set points)",
             "report written": datetime.now(UTC).isoformat(timespec="seconds")}
    all_warnings = [*warnings, *_data_warnings(y)]
    ages = lead_age_days(frame)
    by_age = ([] if ages is None else
              evaluate.by_age(y, probability, rule_points, ages, ECE_BINS))
    return ReportData(f"{scorer.dataset}: {facts['model']}", facts, y, probability,
                      model_stage, rule_points, rule_stage, learned_points, order,
                      handoff.value, ranking, scorer.rules, learned,
                      table_edits(scorer.rules, learned.rules),
                      threshold_edits(scorer.rules, learned.rules), accuracy, funnel, weights,
                      explain.fit_engagement(scorer, explain.contributions(scorer, features)),
                      quadrant_cuts(scorer),
                      pd.concat([chosen[["rated"]].reset_index(drop=True), shown], axis=1),
                      all_warnings, list(notes), promotion, by_age)


def test_times(examples: Examples, test: np.ndarray) -> pd.Series | None:
    """When each test lead was scored: its snapshot's ``as_of`` (events shape), the
    table's time column, or None (a table without time)."""
    if "as_of" in examples.frame:
        return examples.frame["as_of"].iloc[test].reset_index(drop=True)
    if examples.order is None:
        return None
    return examples.order.iloc[test].reset_index(drop=True)


def rated_examples(probability: np.ndarray, model_stage: np.ndarray, rule_stage: np.ndarray,
                   order: Sequence[str], handoff: str, n: int = N_EXAMPLE_LEADS
                   ) -> pd.DataFrame:
    """Leads the rules over-rate (handed off by the points, not by the model; lowest
    probability first) and under-rate (the reverse; highest probability first).

    Returns:
        Columns ``rated`` (``over-rated by the rules`` or ``under-rated by the rules``)
        and ``row`` (position among the given leads), at most ``n`` of each.
    """
    at = list(order).index(handoff)
    rule_rank = pd.Index(order).get_indexer(rule_stage.astype(str))
    model_rank = pd.Index(order).get_indexer(model_stage.astype(str))
    over = np.flatnonzero((rule_rank >= at) & (model_rank < at))
    under = np.flatnonzero((model_rank >= at) & (rule_rank < at))
    over = over[np.argsort(probability[over], kind="stable")][:n]
    under = under[np.argsort(-probability[under], kind="stable")][:n]
    return pd.DataFrame({"rated": ["over-rated by the rules"] * len(over)
                         + ["under-rated by the rules"] * len(under),
                         "row": np.r_[over, under].astype(int)})


def lead_rows(frame: pd.DataFrame, y: np.ndarray, probability: np.ndarray,
              model_stage: np.ndarray, rules: RulesConfig,
              events: pd.DataFrame | None) -> pd.DataFrame:
    """Both verdicts on some leads: the rules' points and what fired, the model's score."""
    points = score_points(rules, frame, events)
    shown = pd.DataFrame({"lead_id": frame["lead_id"].astype(str).to_numpy()})
    if "as_of" in frame:
        shown["as_of"] = frame["as_of"].dt.strftime("%Y-%m-%d").to_numpy()
    return shown.assign(rule_points=points.points, rule_stage=points.stage,
                        rules_fired=points.fired_text(), model_score=score_0_100(probability),
                        suggested_stage=model_stage,
                        converted=np.where(y == 1, "yes", "no"))


def lead_reasons(scorer: LeadScorer, features: pd.DataFrame, k: int) -> pd.DataFrame:
    """The model's side of some leads: quadrant and the top-k reasons each way as text.

    Args:
        scorer: The trained scorer.
        features: The leads' model input.
        k: Reasons per direction.

    Returns:
        Columns ``quadrant``, ``reasons_up`` and ``reasons_down`` (sentences joined by
        ``"; "``, strongest first; empty when no field pushes that way), index 0..n-1.
    """
    explained = explain.explanation_frame(scorer, features, explain.contributions(
        scorer, features), k)
    joined = {way: explained[[f"reason_{way}_{i}" for i in range(1, k + 1)]].apply(
        lambda row: "; ".join(row.dropna()), axis=1) for way in ("up", "down")}
    return pd.DataFrame({"quadrant": explained["quadrant"].to_numpy(dtype=object),
                         "reasons_up": joined["up"].to_numpy(dtype=object),
                         "reasons_down": joined["down"].to_numpy(dtype=object)})


def quadrant_cuts(scorer: LeadScorer) -> tuple[float, float] | None:
    """The fit and engagement log-odds that split the quadrants: the training leads'
    medians stored with the model; None when the model has no field of a group."""
    cuts = scorer.metadata.get(explain.METADATA_KEY, {}).get("cuts") or {}
    fit, engagement = cuts.get(explain.FIT), cuts.get(explain.ENGAGEMENT)
    if fit is None or engagement is None:
        return None
    return float(fit[1]), float(engagement[1])


def segment_conversion(y: np.ndarray, explained: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Leads and conversion per quadrant, fit grade and engagement level (best first).

    Args:
        y: Outcomes of the leads.
        explained: Their :func:`explain.fit_engagement`.

    Returns:
        Report name -> :func:`evaluate.stage_conversion` table indexed by the segment's
        values; segments the model cannot tell (no field of the group) are left out.
    """
    tables = {}
    for column, (name, order) in SEGMENTS.items():
        values = explained[column]
        if values.isna().any():
            continue
        table = evaluate.stage_conversion(y, values.to_numpy(dtype=object), order)
        tables[name] = table.rename_axis(name)
    return tables


def _data_warnings(y: np.ndarray) -> list[str]:
    converted = int(y.sum())
    if converted < FEW_TEST_CONVERSIONS:
        return [f"only {converted} test leads converted: the rates and curves below are "
                "noisy; read differences of a few points as noise"]
    return []


# ------------------------------------------------------------------------ figures
def figures(data: ReportData) -> dict[str, Figure]:
    """Every figure of the report, by name."""
    scorers = {"model": data.probability, "rules (points)": data.rule_points,
               "learned points": data.learned_points}
    model_table = evaluate.stage_conversion(data.y, data.model_stage, data.order)
    rules_table = evaluate.stage_conversion(data.y, data.rule_stage, data.order)
    leads, rates = evaluate.stage_crosstab(data.y, data.rule_stage, data.model_stage, data.order)
    return {
        "stage_conversion": plots.stage_conversion_figure(model_table, rules_table),
        "gain": plots.gain_figure(data.y, scorers),
        "lift": plots.lift_figure(data.y, scorers),
        "calibration": plots.calibration_figure(
            data.y, {"model": data.probability,
                     "learned points": data.learned.probability(data.learned_points)}, 10),
        "score_distributions": plots.score_distribution_figure(
            score_0_100(data.probability), data.rule_points, data.y),
        "stage_crosstab": plots.stage_crosstab_figure(leads, rates),
        **accuracy_figures(data.accuracy),
        **driver_figures(data),
        **promotion_figures(data.promotion),
        **({"by_age": plots.age_band_figure(data.by_age)} if data.by_age else {}),
        **account_figures(data.accounts),
    }


def promotion_figures(promotion: dict[str, Any] | None) -> dict[str, Figure]:
    """The promotion preview's figure, when the report has one."""
    from predictive_scoring.reporting.promotion_plots import preview_figure

    if promotion is None or promotion["preview"] is None:
        return {}
    return {"promotion": preview_figure(promotion["preview"])}


def account_figures(accounts: Any) -> dict[str, Figure]:
    """The test accounts' cumulative gain: the account model, the points sum and maximum
    (and the oracle on simulated data), on the same account snapshots."""
    if accounts is None or accounts.test is None:
        return {}
    test = accounts.test
    scorers = {"account model": test["probability"], "points sum": test["points_sum"],
               "points max": test["points_max"]}
    if "true_probability" in test:
        scorers["oracle"] = test["true_probability"]
    return {"accounts_gain": plots.gain_figure(test["label"].to_numpy(), scorers)}


def accuracy_figures(accuracy: dict[str, Any]) -> dict[str, Figure]:
    """The confusion matrices and, when the test leads have time, the backtest."""
    drawn = {"confusion": accuracy_plots.confusion_figure(accuracy["thresholds"])}
    if accuracy["backtest"] is not None:
        drawn["backtest"] = accuracy_plots.backtest_figure(accuracy["backtest"])
    return drawn


def driver_figures(data: ReportData) -> dict[str, Figure]:
    """The global drivers (bars and beeswarm) and, when the model has both groups, the
    fit vs engagement quadrant of the test leads."""
    weights = data.weights
    drawn = {"importance": driver_plots.importance_figure(weights.importance, weights.groups),
             "beeswarm": driver_plots.beeswarm_figure(weights.contributions.values,
                                                      weights.features,
                                                      weights.contributions.fields)}
    if data.quadrant_cuts is not None:
        drawn["quadrant"] = driver_plots.quadrant_figure(
            data.explained["fit_logodds"], data.explained["engagement_logodds"], data.y,
            *data.quadrant_cuts)
    return drawn


def png_data_uri(figure: Figure) -> str:
    """A figure as an inline ``data:image/png;base64,...`` URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=plots.DPI)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
