"""The report's sections: each a function of the gathered data and the figures' URIs.

:func:`render` puts them in reading order: the funnel, ranking, the accuracy page,
calibration, score distributions, the stage cross-table, the drivers, fit vs engagement,
the learned points as edits to the current table, example leads and the warnings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from predictive_scoring import evaluate
from predictive_scoring.config import RulesConfig
from predictive_scoring.reporting.html import escape, figure, lines, page, table
from predictive_scoring.reporting.report import (
    N_REASONS,
    ReportData,
    figures,
    png_data_uri,
    segment_conversion,
)


def render(data: ReportData, figure_uris: dict[str, str]) -> str:
    """The report as one HTML document (figures given as data URIs by name)."""
    sections = [
        ("funnel", "Funnel: conversion by stage, rules vs model",
         _funnel_section(data, figure_uris)),
        ("ranking", "Gain and lift", _ranking_section(data, figure_uris)),
        ("accuracy", "Accuracy at a threshold", _accuracy_section(data, figure_uris)),
        ("calibration", "Calibration", figure(
            figure_uris["calibration"], "Predicted vs observed conversion per probability "
            "bin; the learned points are mapped to a probability by their scale.")),
        ("distributions", "Score distributions", figure(
            figure_uris["score_distributions"], "Each outcome's scores, as a share of its "
            "own leads: the less the shapes overlap, the better the score separates them.")),
        ("crosstab", "Rule stage vs suggested stage", _crosstab_section(data, figure_uris)),
        *([("age", "By lead age", _age_section(data, figure_uris))] if data.by_age else []),
        ("drivers", "Global drivers", _drivers_section(data, figure_uris)),
        ("quadrant", "Fit vs engagement", _quadrant_section(data, figure_uris)),
        ("points", "Learned points: edits to the current table", _points_section(data)),
        ("examples", "Leads the rules over- and under-rate", _examples_section(data)),
        ("warnings", "Data and leakage warnings", _warnings_section(data)),
    ]
    if data.promotion is not None:
        sections.insert(0, ("promotion", "Promotion: this model against the one in use",
                            _promotion_section(data.promotion, figure_uris)))
    if "accounts_gain" in figure_uris:
        sections.insert(-3, ("accounts", "Accounts: scores from their contacts",
                             _accounts_section(data, figure_uris)))
    return page(data.title, data.facts, _headline(data), sections)


DECISIONS = {"promoted": "promoted: the new champion", "first": "the first champion",
             "kept": "not promoted: the champion stays", "not_promoted": "not promoted"}


def _promotion_section(promotion: dict[str, Any], uris: dict[str, str]) -> str:
    block, preview = promotion["promotion"], promotion["preview"]
    parts = [f'<p class="headline"><b>{escape(DECISIONS[block["decision"]])}</b>: '
             f'{escape(block["reason"])}.</p>']
    values = {"this model": block["challenger"], "hand-set points": block["rules"]}
    if block["champion"] is not None:
        values = {f"champion (version {block['champion_version']})": block["champion"],
                  **values}
    if block["challenger"] is not None:
        frame = pd.DataFrame({"scorer": list(values), block["metric"]: list(values.values())})
        parts.append(f"<p>{escape(block['metric'])} of each scorer on the same "
                     f"{block['n_leads']:,} test leads:</p>"
                     + table(frame, {block["metric"]: ".4f"}, index=False))
    if preview is None:
        return "".join(parts)
    moves = pd.DataFrame({
        "": ["suggested stage goes up", "suggested stage goes down", "same stage",
             f"handed to sales ({preview['handoff_stage']} and later)",
             "converters among them"],
        f"now ({preview['before']})": [None, None, None, preview["volume_before"],
                                       preview["captured_before"]],
        "with this model": [preview["moved_up"], preview["moved_down"],
                            preview["unchanged"], preview["volume_after"],
                            preview["captured_after"]]})
    parts.append(f"<p>What changes for marketing ops on these {preview['n']:,} test "
                 f"examples ({preview['converters']:,} converted) if this model replaces "
                 f"{escape(preview['before'])}:</p>"
                 + table(moves, {f"now ({preview['before']})": ",", "with this model": ","},
                         index=False))
    if preview["weights_moved"]:
        weights = pd.DataFrame(preview["weights_moved"])
        parts.append("<p>Fields whose global weight (mean |SHAP|, log-odds) moved most:</p>"
                     + table(weights, {"before": ".4f", "after": ".4f", "change": "+.4f"},
                             index=False))
    parts.append(figure(uris["promotion"], "Leads handed to sales and the converters among "
                        "them, now and with this model; the largest moves of global weight."))
    return "".join(parts)


def _headline(data: ReportData) -> str:
    ranking = data.ranking
    model, hand = ranking.loc["model"], ranking.loc["hand-set points"]
    learned = ranking.loc["learned points"]
    return (
        '<p class="headline">'
        f"Handing sales the same number of leads as the hand-set points do (stage "
        f"{escape(data.handoff)} and later), the model's choice holds "
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
             "thresholds give its stages the points' share of the leads open at the end of the "
             "test period (the leads it will score; same hand-off volume there), so on these "
             "test leads the shares can differ; a good scorer puts the converters in the "
             "later stages.</p>",
             table(side, percent), figure(uris["stage_conversion"],
                                            "Conversion rate per stage, model vs rules.")]
    if data.funnel is not None:
        parts += ["<p>The whole dataset's funnel: leads that reached each stage, and the "
                  "conversion from the stage before.</p>",
                  table(data.funnel, {"reached": ",", "share_of_leads": ".1%",
                                       "rate_from_previous": ".1%"})]
    return "".join(parts)


def _ranking_section(data: ReportData, uris: dict[str, str]) -> str:
    return (
        "<p>Leads sorted best first by each scorer: the share of all converters among the "
        "top leads (gain) and how many times the average conversion rate they hold "
        "(lift).</p>"
        + table(data.ranking, dict.fromkeys(data.ranking.columns, ".3f"))
        + figure(uris["gain"], "Cumulative gain: converters captured against leads "
                  "contacted.")
        + figure(uris["lift"], "Cumulative lift: conversion rate of the top leads over the "
                  "overall rate."))


def _age_section(data: ReportData, uris: dict[str, str]) -> str:
    frame = pd.DataFrame(data.by_age).set_index("band").rename(columns={
        "n": "test leads", "positives": "converters", "model_roc_auc": "model ROC-AUC",
        "rules_roc_auc": "points ROC-AUC", "ece": "model ECE"})
    return ("<p>The test leads by their age at the moment scored: how well the model and "
            "the points rank the leads of each age, and how honest the model's "
            "probabilities are there (ECE: the gap between predicted and observed "
            "conversion). A band without converters has no ROC-AUC; a band with few "
            "converters is noisy.</p>"
            + table(frame, {"test leads": ",", "converters": ",", "model ROC-AUC": ".3f",
                            "points ROC-AUC": ".3f", "model ECE": ".4f"})
            + figure(uris["by_age"], "ROC-AUC of the model and the points, and the "
                     "model's calibration error, per lead-age band."))


def _crosstab_section(data: ReportData, uris: dict[str, str]) -> str:
    moves = evaluate.stage_moves(data.y, data.rule_stage, data.model_stage, data.order)
    return ("<p>Each test lead's stage by the points (rows) against the stage the model "
            "suggests (columns). Above the diagonal the model moves a lead up the funnel, "
            "below it down; the rates say how those leads really converted.</p>"
            + table(moves, {"leads": ",", "share_of_leads": ".1%", "conversion_rate": ".1%"})
            + figure(uris["stage_crosstab"], "Leads and conversion rate per pair of stages."))


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
    groups_table = table(groups, {"mean |SHAP|": ".3f"}, index=False)
    fields_table = table(fields, {"mean |SHAP|": ".3f", "share of all fields": ".1%"},
                          index=False)
    return (
        f"<p>How far each field moves the model's log-odds, on average over {n_leads:,} "
        "test leads (mean absolute SHAP value; the contributions of a lead add up exactly "
        "to its raw score). Fit is who the lead is (attributes), engagement what it did "
        "(behaviour); a group's weight sums its fields per lead first.</p>"
        f"<h3>Strongest fields</h3>{fields_table}"
        f"<h3>Fit vs engagement</h3>{groups_table}"
        + figure(uris["importance"], "Mean |SHAP value| of the strongest fields (coloured "
                  "by group) and of the groups.")
        + figure(uris["beeswarm"], "Each test lead's contribution per field: right of zero "
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
        f"<div><h3>By {escape(name)}</h3>{table(segment.rename(columns=shown), formats)}</div>"
        for name, segment in segment_conversion(data.y, data.explained).items())
    return (
        "<p>Each test lead's log-odds split into what its attributes add (fit) and what "
        "its behaviour adds (engagement). Fit grades A-D and engagement levels hot to cold "
        "cut these at the training leads' quartiles; the quadrants cross the halves: "
        "<b>sales-ready</b> (good fit, engaged: call now), <b>nurture</b> (good fit, not "
        "active yet), <b>check fit</b> (active, weak fit: qualify first), <b>low "
        "priority</b>. The tables say how the test leads of each really converted "
        "(<i>of converters</i>: the share of all converted test leads found there).</p>"
        + figure(uris["quadrant"], "Fit against engagement per test lead; the lines are "
                  "the training leads' medians.")
        + f'<div class="side-by-side narrow">{blocks}</div>')


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
        parts.append(f"<h3>{escape(rated.capitalize())}</h3><p>{escape(what)}</p>"
                     + _example_table(group))
    return "".join(parts)


def _example_table(leads: pd.DataFrame) -> str:
    """One row per lead: who, the rules' verdict and why, the model's verdict and why."""
    head = "".join(f'<th class="text">{name}</th>' for name in
                   ("lead", "rules: points and stage", "rules fired", "model: score and stage",
                    "model's reasons up", "model's reasons down"))
    rows = []
    for lead in leads.itertuples(index=False):
        when = f"<br>as of {escape(lead.as_of)}" if hasattr(lead, "as_of") else ""
        cells = (f"<b>{escape(lead.lead_id)}</b>{when}<br>converted: {escape(lead.converted)}",
                 f"{lead.rule_points:.1f}: <b>{escape(lead.rule_stage)}</b>",
                 lines(lead.rules_fired),
                 f"{lead.model_score}: <b>{escape(lead.suggested_stage)}</b><br>"
                 f"{escape(lead.quadrant)}",
                 lines(lead.reasons_up), lines(lead.reasons_down))
        rows.append("<tr>" + "".join(f'<td class="text">{c}</td>' for c in cells) + "</tr>")
    return (f'<table class="leads"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _accounts_section(data: ReportData, uris: dict[str, str]) -> str:
    metrics = data.accounts.metrics
    names = {"model_roc_auc": "account model", "points_sum_roc_auc": "points sum",
             "points_max_roc_auc": "points max", "oracle_roc_auc": "oracle (simulated truth)"}
    ranking = pd.DataFrame({"ROC-AUC": {label: metrics[key] for key, label in names.items()
                                        if key in metrics}}).rename_axis("scorer")
    return (
        f"<p>The probability that one of an account's contacts reaches the target stage "
        f"within the horizon, learnt from the contacts' own scores and the buying group's "
        f"engagement, against the points CRMs add up over contacts, on the same "
        f"{metrics['n_test']:,} test account snapshots ({metrics['positive_rate_test']:.1%} "
        f"converted; ECE {metrics['ece']:.4f}).</p>"
        + table(ranking, {"ROC-AUC": ".3f"})
        + figure(uris["accounts_gain"], "Cumulative gain on the test accounts: converting "
                 "accounts captured against accounts contacted."))


def _warnings_section(data: ReportData) -> str:
    items = [f'<p class="warning">{escape(w)}</p>' for w in data.warnings]
    if not items:
        items = ["<p>No leakage or data warnings: no single column gives the outcome away, "
                 "and the test slice holds enough converters.</p>"]
    notes = "".join(f"<li>{escape(n)}</li>" for n in data.notes)
    return "".join(items) + (f"<p>Notes on the data:</p><ul>{notes}</ul>" if notes else "")




# ------------------------------------------------------------------ accuracy page
def _accuracy_section(data: ReportData, uris: dict[str, str]) -> str:
    accuracy = data.accuracy
    weeks = accuracy["weeks"]
    span = f", over {weeks:.1f} weeks" if weeks is not None else ""
    parts = [
        f"<p>What each scorer does at a threshold, on the same {accuracy['test_leads']:,} "
        f"test leads ({accuracy['converters']:,} converted{span}). A scorer hands sales the "
        "leads at or above its threshold. <b>Precision</b>: the share of the leads handed "
        "over that converted; <b>recall</b>: the share of the converters that were handed "
        "over; <b>F1</b>: their harmonic mean; <b>accuracy</b>: the share of leads on the "
        "right side of the threshold (mostly the many that did not convert, so read it "
        "with the others)."
        + (" Converters per week count the converted test leads handed over, per week of "
           "test leads." if weeks is not None else "") + "</p>"]
    for block in accuracy["thresholds"].values():
        if block is not None:
            parts.append(f"<h3>{escape(block['reading'].capitalize())}: "
                         f"{block['volume']:,} test leads</h3>"
                         + table(_threshold_frame(block["scorers"]), _ACCURACY_FORMATS,
                                 index=False, css="wide"))
    if accuracy.get("note"):
        note = accuracy["note"]
        parts.append(f'<p class="note">{escape(note[:1].upper() + note[1:])}.</p>')
    parts.append(figure(uris["confusion"], "Confusion matrix of each scorer at each "
                        "threshold: leads, and the share of the row (converted or not)."))
    return "".join(parts) + _backtest_part(accuracy, uris)


_ACCURACY_FORMATS = {"handed over": ",", "converted": ",", "missed converters": ",",
                     "precision": ".1%", "recall": ".1%", "F1": ".3f", "accuracy": ".1%",
                     "handed over / week": ",.1f", "converters / week": ",.2f"}


def _threshold_frame(scorers: dict[str, dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for name, row in scorers.items():
        shown = {"scorer": name, "threshold": _threshold_text(name, row["threshold"]),
                 "handed over": row["handed_over"], "converted": row["true_positives"],
                 "missed converters": row["false_negatives"],
                 "precision": row["precision"], "recall": row["recall"], "F1": row["f1"],
                 "accuracy": row["accuracy"]}
        if "expected_converters_per_week" in row:
            shown["handed over / week"] = row["handed_over_per_week"]
            shown["converters / week"] = row["expected_converters_per_week"]
        rows.append(shown)
    return pd.DataFrame(rows)


def _threshold_text(scorer: str, threshold: float | None) -> str:
    if threshold is None:
        return "none handed over"
    if scorer == "model":
        return f"score ≥ {100 * threshold:.2f}"
    return f"≥ {threshold:.3g} points"


def _backtest_part(accuracy: dict[str, Any], uris: dict[str, str]) -> str:
    backtest = accuracy["backtest"]
    if backtest is None:
        return ('<p class="note">No backtest: the test leads have no time to replay them '
                "week by week.</p>")
    reached = pd.DataFrame([{"scorer": name, "converters reached": row["converters_reached"],
                             "share of the converters": row["share_of_converters"]}
                            for name, row in backtest["scorers"].items()])
    return (
        f"<h3>Backtest: the last {backtest['weeks']} weeks of test leads at the capacity</h3>"
        f"<p>From {escape(backtest['start'][:10])} to {escape(backtest['end'][:10])}: "
        f"{backtest['leads']:,} test leads, {backtest['converters']:,} of them converted. "
        f"Each week sales takes its capacity ({escape(accuracy['capacity'])}) of the week's "
        f"best leads by each scorer: {backtest['handed_over']:,} leads handed over in all. "
        "A tie at a week's cut counts in proportion.</p>"
        + table(reached, {"converters reached": ",.1f", "share of the converters": ".1%"},
                index=False)
        + figure(uris["backtest"], "Converters reached week by week (cumulative), per "
                 "scorer, against all the converters of those weeks."))


# ------------------------------------------------------------------ learned points
def _points_section(data: ReportData) -> str:
    learned = data.learned
    auc = data.ranking["roc_auc"]
    counts = data.edits["change"].value_counts()
    summary = ", ".join(f"{counts.get(change, 0)} {change}"
                        for change in ("kept", "changed", "added", "removed"))
    parts = [
        f"<p>The model turned into a points table a CRM can hold: "
        f"{_rule_count(learned.rules)} rules, one per signal, each with the model's sign "
        f"({learned.points_per_doubling:g} points double a lead's odds; the table follows "
        f"{learned.fidelity:.0%} of the model's variation on the training leads). ROC-AUC "
        f"on the test leads: learned points <b>{auc['learned points']:.3f}</b>, model "
        f"{auc['model']:.3f}, hand-set points {auc['hand-set points']:.3f}.</p>"
        f"<p>Apply it by hand as these edits to the current table "
        f"<b>{escape(data.hand_rules.name)}</b> ({summary}): a learned rule keeps the name "
        "of the current rule it edits. The YAML file (<code>learn-points --out</code>, or "
        "<code>learned_points.yaml</code> of a training run) holds the same table for "
        "<code>rules --rules</code>.</p>"]
    if learned.rules.starting_points:
        parts.append(f"<p>Every lead starts with <b>{learned.rules.starting_points:g} "
                     "points</b>: the scale is shifted so that the stage thresholds start at "
                     "0 (in a CRM, give them to a rule every lead meets, such as 'contact "
                     "created').</p>")
    for event_type, kept in learned.own_events.items():
        verdict = ("kept: it ranks the training leads better" if kept else
                   "left out: a rule on it does not rank the training leads better")
        parts.append(f'<p class="note">{escape(event_type)} is an event the company sends '
                     f"itself; {verdict}.</p>")
    parts += [table(data.edits, index=False, css="wide edits", row_class="change"),
              "<h3>Stage thresholds (points at which a stage starts)</h3>",
              table(data.threshold_edits, index=False)]
    return "".join(parts)


def _rule_count(rules: RulesConfig) -> int:
    return len(rules.event_rules) + len(rules.attribute_rules)


def write_report(data: ReportData, path: Path) -> Path:
    """Render the report with its figures embedded and write it to ``path``."""
    uris = {name: png_data_uri(drawn) for name, drawn in figures(data).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data, uris), encoding="utf-8")
    return path
