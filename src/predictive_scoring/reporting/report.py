"""The marketing-ops comparison report: one self-contained HTML file, model vs points.

Everything is computed on the test slice (leads the model never saw), from the same
functions the rest of the project uses: metrics and stage tables from
:mod:`~predictive_scoring.evaluate`, figures from :mod:`~predictive_scoring.reporting.plots`, the
learned points table from :mod:`~predictive_scoring.learned_points`. Figures are embedded
as base64 PNGs and the styles inline, so the file opens anywhere, offline, with no tool
installed. :func:`report_data` gathers the numbers, :func:`render` turns them into HTML.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from predictive_scoring import evaluate, explain
from predictive_scoring.config import AttributeRule, EventRule, RulesConfig
from predictive_scoring.explain import GlobalWeights
from predictive_scoring.learned_points import LearnedPoints
from predictive_scoring.models.scorer import LeadScorer, score_0_100
from predictive_scoring.reporting import driver_plots, plots
from predictive_scoring.rules import score_points
from predictive_scoring.stages import FUNNEL, Stage, stage_for_values
from predictive_scoring.train import Examples

N_EXAMPLE_LEADS = 5
"""Leads shown in each of the over-rated and under-rated example tables."""

FEW_TEST_CONVERSIONS = 40
"""Below this many converted test leads the figures are flagged as noisy."""

N_REASONS = 3
"""Reasons up and reasons down shown for each example lead."""

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
        hand_rules: The hand-set points table.
        learned: The learned points table.
        funnel: Leads reaching each stage in the whole dataset (events shape), or None.
        weights: The model's global weights on (a sample of) the test leads.
        explained: :func:`explain.fit_engagement` of every test lead.
        quadrant_cuts: The fit and engagement log-odds that split the quadrants (the
            training leads' medians), or None when the model lacks one of the groups.
        examples: Leads the rules over- and under-rate, with both scores and the model's
            reasons.
        warnings: Data and leakage warnings.
        notes: What was left out, and why.
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
    funnel: pd.DataFrame | None
    weights: GlobalWeights
    explained: pd.DataFrame
    quadrant_cuts: tuple[float, float] | None
    examples: pd.DataFrame
    warnings: list[str]
    notes: list[str]


# ------------------------------------------------------------------------ gathering
def report_data(scorer: LeadScorer, examples: Examples, rows: dict[str, np.ndarray],
                events: pd.DataFrame | None, learned: LearnedPoints, weights: GlobalWeights,
                handoff: Stage, funnel: pd.DataFrame | None, warnings: Sequence[str],
                notes: Sequence[str]) -> ReportData:
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
        funnel: ``stages.funnel_conversion`` of the dataset (events shape), or None.
        warnings: Data and leakage warnings.
        notes: What was left out of the data, and why.
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
    ranking = evaluate.ranking_table(y, {"model": probability, "learned points": learned_points,
                                         "hand-set points": rule_points}, volume)
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
    return ReportData(f"{scorer.dataset}: {facts['model']}", facts, y, probability,
                      model_stage, rule_points, rule_stage, learned_points, order,
                      handoff.value, ranking, scorer.rules, learned, funnel, weights,
                      explain.fit_engagement(scorer, explain.contributions(scorer, features)),
                      quadrant_cuts(scorer),
                      pd.concat([chosen[["rated"]].reset_index(drop=True), shown], axis=1),
                      all_warnings, list(notes))


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
        **driver_figures(data),
    }


def driver_figures(data: ReportData) -> dict[str, Figure]:
    """The global drivers (bars and beeswarm) and, when the model has both groups, the
    fit vs engagement quadrant of the test leads."""
    weights = data.weights
    drawn = {"importance": driver_plots.importance_figure(weights.importance, weights.groups),
             "beeswarm": driver_plots.beeswarm_figure(weights.contributions.values, weights.features,
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


# ------------------------------------------------------------------------ HTML
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1f2328; background: #fff; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
h2 { border-bottom: 2px solid #0072B2; padding-bottom: 0.2rem; margin-top: 2.5rem; }
.facts { color: #57606a; margin: 0.2rem 0 1rem; }
.facts span { margin-right: 1.2rem; display: inline-block; }
.headline { background: #eef6fb; border-left: 4px solid #0072B2; padding: 0.8rem 1rem; }
.warning { background: #fff8e6; border-left: 4px solid #E69F00; padding: 0.5rem 1rem;
           margin: 0.4rem 0; }
nav ol { columns: 2; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #d0d7de; padding: 0.3rem 0.6rem; text-align: right;
         vertical-align: top; }
th { background: #f6f8fa; }
td.text, th.text { text-align: left; }
.side-by-side { display: flex; gap: 1.5rem; flex-wrap: wrap; align-items: flex-start; }
.side-by-side > div { flex: 1 1 480px; overflow-x: auto; }
.side-by-side.narrow { gap: 1rem; }
.side-by-side.narrow > div { flex: 0 0 auto; }
.side-by-side.narrow table { font-size: 0.85rem; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: 0.9rem; }
table.leads { font-size: 0.82rem; width: 100%; }
table.leads td { white-space: normal; }
table.leads td:first-child { white-space: nowrap; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(frame: pd.DataFrame, formats: dict[str, str] | None = None,
           index: bool = True) -> str:
    """An HTML table; numbers formatted by column, text left-aligned, everything escaped."""
    formats = formats or {}
    shown = frame.reset_index() if index else frame
    text_columns = {c for c in shown.columns if c not in formats
                    and not pd.api.types.is_numeric_dtype(shown[c])}
    head = "".join(f'<th class="{"text" if c in text_columns else "num"}">{_e(c)}</th>'
                   for c in shown.columns)
    body = []
    for record in shown.itertuples(index=False):
        cells = []
        for column, value in zip(shown.columns, record, strict=True):
            css = "text" if column in text_columns else "num"
            cells.append(f'<td class="{css}">{_e(_cell(value, formats.get(column)))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _cell(value: object, fmt: str | None) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if fmt and isinstance(value, int | float | np.number):
        return format(value, fmt)
    return str(value)


def _figure(uri: str, caption: str) -> str:
    return (f'<figure><img src="{uri}" alt="{_e(caption)}"><figcaption>{_e(caption)}'
            "</figcaption></figure>")


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def rules_frame(rules: RulesConfig) -> pd.DataFrame:
    """A points table as rows a person reads: what earns points, how many, limits."""
    rows = [{"rule": r.name, "when": _event_condition(r), "points": r.points,
             "at most": "" if r.cap is None else f"{r.cap:g}",
             "halves every": "" if r.half_life_days is None else f"{r.half_life_days:g} days"}
            for r in rules.event_rules]
    rows += [{"rule": r.name, "when": _attribute_condition(r), "points": r.points,
              "at most": "", "halves every": ""} for r in rules.attribute_rules]
    frame = pd.DataFrame(rows, columns=["rule", "when", "points", "at most", "halves every"])
    return frame.assign(points=frame["points"].map(lambda p: f"{p:+g}"))


def _event_condition(rule: EventRule) -> str:
    detail = "" if rule.detail is None else (
        f" ({rule.detail})" if isinstance(rule.detail, str) else f" ({', '.join(rule.detail)})")
    return f"each {rule.event_type}{detail}"


def _attribute_condition(rule: AttributeRule) -> str:
    words = {"eq": "=", "ne": "≠", "in": "in", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤",
             "between": "between", "contains": "contains"}
    if rule.op == "is_null":
        return f"{rule.field} is missing"
    return f"{rule.field} {words[rule.op]} {rule.value}"


def _stage_thresholds(rules: RulesConfig) -> str:
    ordered = sorted(rules.stage_thresholds.items(), key=lambda item: item[0].rank)
    return ", ".join(f"{stage.value} ≥ {bar:g}" for stage, bar in ordered)


def render(data: ReportData, figure_uris: dict[str, str]) -> str:
    """The report as one HTML document (figures given as data URIs by name)."""
    sections = [
        ("funnel", "Funnel: conversion by stage, rules vs model", _funnel_section(data,
                                                                                   figure_uris)),
        ("ranking", "Gain and lift", _ranking_section(data, figure_uris)),
        ("calibration", "Calibration", _figure(
            figure_uris["calibration"], "Predicted vs observed conversion per probability "
            "bin; the learned points are mapped to a probability by their scale.")),
        ("distributions", "Score distributions", _figure(
            figure_uris["score_distributions"], "Each outcome's scores, as a share of its "
            "own leads: the less the shapes overlap, the better the score separates them.")),
        ("crosstab", "Rule stage vs suggested stage", _crosstab_section(data, figure_uris)),
        ("drivers", "Global drivers", _drivers_section(data, figure_uris)),
        ("quadrant", "Fit vs engagement", _quadrant_section(data, figure_uris)),
        ("points", "Learned points vs hand-set points", _points_section(data)),
        ("examples", "Leads the rules over- and under-rate", _examples_section(data)),
        ("warnings", "Data and leakage warnings", _warnings_section(data)),
    ]
    nav = "".join(f'<li><a href="#{a}">{_e(t)}</a></li>' for a, t, _ in sections)
    facts = "".join(f"<span><b>{_e(k)}:</b> {_e(v)}</span>" for k, v in data.facts.items())
    body = "".join(_section(a, t, b) for a, t, b in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Lead scoring report: {_e(data.title)}</title><style>{STYLE}</style>"
            f"</head><body><main><h1>Lead scoring report: {_e(data.title)}</h1>"
            f'<p class="facts">{facts}</p>{_headline(data)}<nav><ol>{nav}</ol></nav>{body}'
            "</main></body></html>")


def _headline(data: ReportData) -> str:
    ranking = data.ranking
    model, hand = ranking.loc["model"], ranking.loc["hand-set points"]
    learned = ranking.loc["learned points"]
    return (
        '<p class="headline">'
        f"Handing sales the same number of leads as the hand-set points do (stage "
        f"{_e(data.handoff)} and later), the model's choice holds "
        f"<b>{model['captured_at_volume']:.0%}</b> of the leads who converted, the hand-set "
        f"points' <b>{hand['captured_at_volume']:.0%}</b>, the learned points' "
        f"<b>{learned['captured_at_volume']:.0%}</b>. ROC-AUC: model {model['roc_auc']:.3f}, "
        f"learned points {learned['roc_auc']:.3f}, hand-set points {hand['roc_auc']:.3f}.</p>")


def _funnel_section(data: ReportData, uris: dict[str, str]) -> str:
    model = evaluate.stage_conversion(data.y, data.model_stage, data.order)
    rules = evaluate.stage_conversion(data.y, data.rule_stage, data.order)
    side = pd.DataFrame({"rules: leads": rules["leads"], "rules: conversion":
                         rules["conversion_rate"], "model: leads": model["leads"],
                         "model: conversion": model["conversion_rate"]})
    percent = {"rules: conversion": ".1%", "model: conversion": ".1%",
               "rules: leads": ",", "model: leads": ","}
    parts = ["<p>Test leads in each stage and how many of them converted. The model's "
             "stages hold the same share of leads as the points' (same hand-off volume); "
             "a good scorer puts the converters in the later stages.</p>",
             _table(side, percent), _figure(uris["stage_conversion"],
                                            "Conversion rate per stage, model vs rules.")]
    if data.funnel is not None:
        parts += ["<p>The whole dataset's funnel: leads that reached each stage, and the "
                  "conversion from the stage before.</p>",
                  _table(data.funnel, {"reached": ",", "share_of_leads": ".1%",
                                       "rate_from_previous": ".1%"})]
    return "".join(parts)


def _ranking_section(data: ReportData, uris: dict[str, str]) -> str:
    return (
        "<p>Leads sorted best first by each scorer: the share of all converters among the "
        "top leads (gain) and how many times the average conversion rate they hold "
        "(lift).</p>"
        + _table(data.ranking, dict.fromkeys(data.ranking.columns, ".3f"))
        + _figure(uris["gain"], "Cumulative gain: converters captured against leads "
                  "contacted.")
        + _figure(uris["lift"], "Cumulative lift: conversion rate of the top leads over the "
                  "overall rate."))


def _crosstab_section(data: ReportData, uris: dict[str, str]) -> str:
    moves = evaluate.stage_moves(data.y, data.rule_stage, data.model_stage, data.order)
    return ("<p>Each test lead's stage by the points (rows) against the stage the model "
            "suggests (columns). Above the diagonal the model moves a lead up the funnel, "
            "below it down; the rates say how those leads really converted.</p>"
            + _table(moves, {"leads": ",", "share_of_leads": ".1%", "conversion_rate": ".1%"})
            + _figure(uris["stage_crosstab"], "Leads and conversion rate per pair of stages."))


def _drivers_section(data: ReportData, uris: dict[str, str]) -> str:
    weights = data.weights
    n_leads = len(weights.contributions.values)
    total = weights.importance["mean_abs"].sum()
    top = weights.importance.head(10)
    fields = pd.DataFrame({"field": top["feature"], "group": top["group"],
                           "mean |SHAP|": top["mean_abs"],
                           "share of all fields": top["mean_abs"] / total})
    groups = pd.DataFrame({"group": weights.groups["group"], "fields":
                           weights.groups["features"], "mean |SHAP|":
                           weights.groups["mean_abs"]})
    groups_table = _table(groups, {"mean |SHAP|": ".3f"}, index=False)
    fields_table = _table(fields, {"mean |SHAP|": ".3f", "share of all fields": ".1%"},
                          index=False)
    return (
        f"<p>How far each field moves the model's log-odds, on average over {n_leads:,} "
        "test leads (mean absolute SHAP value; the contributions of a lead add up exactly "
        "to its raw score). Fit is who the lead is (attributes), engagement what it did "
        "(behaviour); a group's weight sums its fields per lead first.</p>"
        '<div class="side-by-side">'
        f"<div><h3>Strongest fields</h3>{fields_table}</div>"
        f"<div><h3>Fit vs engagement</h3>{groups_table}</div></div>"
        + _figure(uris["importance"], "Mean |SHAP value| of the strongest fields (coloured "
                  "by group) and of the groups.")
        + _figure(uris["beeswarm"], "Each test lead's contribution per field: right of zero "
                  "raises the score, left lowers it; colour is the lead's value within the "
                  "field (grey: a category or missing)."))


def _quadrant_section(data: ReportData, uris: dict[str, str]) -> str:
    if data.quadrant_cuts is None:
        return ("<p>The model has fields of only one group (fit or engagement), so its "
                "leads cannot be split into fit vs engagement; declare the activity "
                "columns under <code>feature_groups.engagement</code> in the dataset "
                "config.</p>")
    shown = {"leads": "leads", "share_of_leads": "share", "conversion_rate": "converted",
             "share_of_positives": "of converters"}
    formats = {"leads": ",", "share": ".1%", "converted": ".1%", "of converters": ".1%"}
    blocks = "".join(
        f"<div><h3>By {_e(name)}</h3>{_table(table.rename(columns=shown), formats)}</div>"
        for name, table in segment_conversion(data.y, data.explained).items())
    return (
        "<p>Each test lead's log-odds split into what its attributes add (fit) and what "
        "its behaviour adds (engagement). Fit grades A-D and engagement levels hot to cold "
        "cut these at the training leads' quartiles; the quadrants cross the halves: "
        "<b>sales-ready</b> (good fit, engaged: call now), <b>nurture</b> (good fit, not "
        "active yet), <b>check fit</b> (active, weak fit: qualify first), <b>low "
        "priority</b>. The tables say how the test leads of each really converted "
        "(<i>of converters</i>: the share of all converted test leads found there).</p>"
        + _figure(uris["quadrant"], "Fit against engagement per test lead; the lines are "
                  "the training leads' medians.")
        + f'<div class="side-by-side narrow">{blocks}</div>')


def _points_section(data: ReportData) -> str:
    learned = data.learned
    auc = data.ranking["roc_auc"]
    return (
        f"<p>The learned table is the model turned into points a CRM can hold "
        f"({learned.points_per_doubling:g} points double a lead's odds), in the rules "
        f"engine's own format. ROC-AUC on the test leads: learned points "
        f"<b>{auc['learned points']:.3f}</b>, hand-set points "
        f"<b>{auc['hand-set points']:.3f}</b> (model {auc['model']:.3f}).</p>"
        '<div class="side-by-side">'
        f"<div><h3>Hand-set: {_e(data.hand_rules.name)}</h3>"
        f"<p>Stages: {_e(_stage_thresholds(data.hand_rules))}</p>"
        f"{_table(rules_frame(data.hand_rules), index=False)}</div>"
        f"<div><h3>Learned: {_e(learned.rules.name)}</h3>"
        f"<p>Stages: {_e(_stage_thresholds(learned.rules))}</p>"
        f"{_table(rules_frame(learned.rules), index=False)}</div></div>")


def _examples_section(data: ReportData) -> str:
    if data.examples.empty:
        return ("<p>The points and the model agree on who is handed to sales: no test lead "
                "is handed off by one and not the other.</p>")
    parts = [f"<p>Each lead's two verdicts side by side: the rules that fired (points "
             f"rounded) and the model's {N_REASONS} strongest reasons each way, in score "
             "points (0-100) away from the average lead's score.</p>"]
    for rated, group in data.examples.groupby("rated", sort=False):
        what = ("Handed to sales by the points, but the model says not yet."
                if rated.startswith("over") else
                "The model would hand these to sales; the points do not.")
        parts.append(f"<h3>{_e(rated.capitalize())}</h3><p>{_e(what)}</p>"
                     + _example_table(group))
    return "".join(parts)


def _example_table(leads: pd.DataFrame) -> str:
    """One row per lead: who, the rules' verdict and why, the model's verdict and why."""
    head = "".join(f'<th class="text">{name}</th>' for name in
                   ("lead", "rules: points and stage", "rules fired", "model: score and stage",
                    "model's reasons up", "model's reasons down"))
    rows = []
    for lead in leads.itertuples(index=False):
        when = f"<br>as of {_e(lead.as_of)}" if hasattr(lead, "as_of") else ""
        cells = (f"<b>{_e(lead.lead_id)}</b>{when}<br>converted: {_e(lead.converted)}",
                 f"{lead.rule_points:.1f}: <b>{_e(lead.rule_stage)}</b>",
                 _lines(lead.rules_fired),
                 f"{lead.model_score}: <b>{_e(lead.suggested_stage)}</b><br>"
                 f"{_e(lead.quadrant)}",
                 _lines(lead.reasons_up), _lines(lead.reasons_down))
        rows.append("<tr>" + "".join(f'<td class="text">{c}</td>' for c in cells) + "</tr>")
    return (f'<table class="leads"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _lines(joined: str) -> str:
    """``"a; b"`` (how rules fired and reasons are joined) as escaped lines; ``-`` if none."""
    items = [item for item in str(joined).split("; ") if item]
    return "<br>".join(_e(item) for item in items) if items else "-"


def _warnings_section(data: ReportData) -> str:
    items = [f'<p class="warning">{_e(w)}</p>' for w in data.warnings]
    if not items:
        items = ["<p>No leakage or data warnings: no single column gives the outcome away, "
                 "and the test slice holds enough converters.</p>"]
    notes = "".join(f"<li>{_e(n)}</li>" for n in data.notes)
    return "".join(items) + (f"<p>Notes on the data:</p><ul>{notes}</ul>" if notes else "")


def write_report(data: ReportData, path: Path) -> Path:
    """Render the report with its figures embedded and write it to ``path``."""
    uris = {name: png_data_uri(figure) for name, figure in figures(data).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data, uris), encoding="utf-8")
    return path
