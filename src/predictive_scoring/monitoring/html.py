"""``monitoring.html``: the monitoring document as one self-contained page, built with the
training report's blocks (:mod:`predictive_scoring.reporting.html`: styles, escaped
tables, figures as data URIs)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from predictive_scoring.monitoring import plots
from predictive_scoring.reporting import html
from predictive_scoring.reporting.report import png_data_uri

ACCURACY_FIGURE = "accuracy_over_time"


def figures(report: Mapping[str, Any], rows: pd.DataFrame) -> dict[str, Figure]:
    """The page's figures by name (the first one is the README's)."""
    settings = report["settings"]
    thresholds = settings["thresholds"]
    drawn = {ACCURACY_FIGURE: plots.accuracy_over_time_figure(
                 [b for b in report["by_period"] if b["model_version"] is not None]),
             "calibration": plots.calibration_figure(rows, settings["ece_bins"]),
             "stages": plots.stage_figure(rows)}
    for version, found in report["drift"].items():
        if found.get("available") and found["score"]["leads"]:
            drawn[f"drift {version}"] = plots.drift_figure(
                version, found, thresholds["psi_watch"], thresholds["psi_alert"])
    return drawn


def headline(report: Mapping[str, Any]) -> str:
    """The answer to "is the model still beating the points?" in two sentences."""
    model, rules = report["model"]["roc_auc"], report["rules"]["roc_auc"]
    counts = (f"{report['n_scored']:,} scores logged: {report['n_matured']:,} matured "
              f"(outcome known), {report['n_pending']:,} pending (horizon not yet passed, "
              "never counted as a loss)")
    if model is None or rules is None:
        verdict = "Not enough matured scores with both outcomes to judge the model yet."
    else:
        beats = "beats" if model > rules else "does not beat"
        verdict = (f"On the matured leads the model {beats} the points: realised ROC-AUC "
                   f"{model:.3f} against {rules:.3f}")
        captured_model = report["model"]["captured_at_handoff"]
        captured_rules = report["rules"]["captured_at_handoff"]
        if captured_model is not None and captured_rules is not None:
            verdict += (f"; at the points' hand-off volume ({report['handoff_volume']:,} "
                        f"leads) it catches {captured_model:.0%} of converters, the points "
                        f"{captured_rules:.0%}")
        verdict += "."
    alerts = len(report["alerts"])
    tail = f" {alerts} alert(s) below." if alerts else " No alert."
    return (f'<p class="headline"><b>{html.escape(verdict)}</b><br>'
            f"{html.escape(counts)}.{html.escape(tail)}</p>")


def _accuracy_frame(blocks: list[tuple[str, Mapping[str, Any]]], first: str) -> pd.DataFrame:
    return pd.DataFrame([{
        first: key, "scored": b["n_scored"], "leads": b["n_leads"], "matured": b["n_matured"],
        "pending": b["n_pending"], "conversion": b["conversion"],
        "model ROC-AUC": b["model"]["roc_auc"], "points ROC-AUC": b["rules"]["roc_auc"],
        "model PR-AUC": b["model"]["pr_auc"], "points PR-AUC": b["rules"]["pr_auc"],
        "hand-off volume": b["handoff_volume"],
        "model captured": b["model"]["captured_at_handoff"],
        "points captured": b["rules"]["captured_at_handoff"], "model ECE": b["model"]["ece"],
    } for key, b in blocks])


FORMATS = {"scored": ",", "leads": ",", "matured": ",", "pending": ",", "hand-off volume": ",",
           "conversion": ".1%", "model ROC-AUC": ".3f", "points ROC-AUC": ".3f",
           "model PR-AUC": ".3f", "points PR-AUC": ".3f", "model captured": ".0%",
           "points captured": ".0%", "model ECE": ".3f"}


def render(report: Mapping[str, Any], figure_uris: Mapping[str, str]) -> str:
    """The whole page."""
    settings = report["settings"]
    facts = {"target": f"{settings['target_stage']} within {settings['horizon_days']:g} days",
             "hand-off": f"{settings['handoff_stage']} or later",
             "window": f"{settings['since'] or 'start'} to {settings['until'] or 'end'}",
             "data end": settings["data_end"], "run at": settings["run_at"]}
    periods = [(f"{b['period']} {b['model_version'] or '(no score)'}", b)
               for b in report["by_period"]]
    accuracy = (html.figure(figure_uris[ACCURACY_FIGURE], "Realised ROC-AUC per period on "
                            "the matured leads, model vs points; below, the scores logged")
                + html.table(_accuracy_frame(list(report["by_version"].items()),
                                             "model version"), FORMATS, index=False,
                             css="wide")
                + "<h3>Per period</h3>"
                + html.table(_accuracy_frame(periods, "period"), FORMATS, index=False,
                             css="wide"))
    calibration = html.figure(figure_uris["calibration"], "Reliability of the model's "
                              "probabilities on the matured leads (ECE in the legend)")
    stages = html.figure(figure_uris["stages"], "Conversion of the matured leads by the "
                         "model's suggested stage and by the rules' stage")
    sections = [("accuracy", "Model vs points on the matured leads", accuracy),
                ("alerts", "Alerts", _alerts(report["alerts"])),
                ("calibration", "Calibration", calibration),
                ("stages", "Conversion by stage", stages),
                ("drift", "Drift and staleness", _drift(report["drift"], figure_uris)),
                ("problems", "What could not be judged", _problems(report["problems"]))]
    return html.page("monitoring", facts, headline(report), sections)


def _alerts(alerts: list[Mapping[str, Any]]) -> str:
    if not alerts:
        return '<p class="note">No alert: no input or score past the thresholds, the ' \
               "model and its data are recent enough, and it is not beaten by the points.</p>"
    return "".join(f'<p class="warning"><b>{html.escape(a["model_version"])}</b>: '
                   f"{html.escape(a['message'])}</p>" for a in alerts)


def _drift(drift: Mapping[str, Mapping[str, Any]], uris: Mapping[str, str]) -> str:
    parts = []
    for version, found in drift.items():
        parts.append(f"<h3>{html.escape(version)}</h3>")
        if not found.get("available"):
            parts.append(f'<p class="note">Drift unavailable: {html.escape(found["reason"])}'
                         "</p>")
            continue
        parts.append(
            f'<p class="note">Trained {html.escape(found["trained_at"])} '
            f"({found['days_since_training']} days ago); training data up to "
            f"{html.escape(found['training_data_end'])} "
            f"({found['days_since_training_data']} days ago). Score PSI "
            f"{html.cell(found['score']['psi'], '.3f')}; {found['rows_with_bins']:,} scores "
            f"with input bins, {found['rows_without_bins']:,} without (older rows).</p>")
        if f"drift {version}" in uris:
            parts.append(html.figure(uris[f"drift {version}"], f"PSI of {version}'s score "
                                     "and most shifted inputs"))
        frame = pd.DataFrame(found["inputs"][:25])
        if len(frame):
            parts.append(html.table(frame.drop(columns=["unreadable"], errors="ignore"),
                                    {"psi": ".3f", "missing": ".1%",
                                     "missing_reference": ".1%", "unknown_share": ".1%",
                                     "leads": ","}, index=False))
    return "".join(parts)


def _problems(found: Mapping[str, Any]) -> str:
    versions = found["unknown_model_versions"]
    missing = found["leads_missing_from_dataset"]
    duplicates = found["duplicate_request_ids"]
    empty = found["empty_periods"]
    items = [
        f"Unknown model versions: {versions['rows']:,} rows "
        f"{dict(versions['versions']) or ''} ({versions['note']}).",
        f"Leads missing from the dataset: {missing['rows']:,} rows of {missing['leads']:,} "
        f"leads, not judged; e.g. {', '.join(missing['examples']) or 'none'}.",
        f"Duplicate request ids: {duplicates['rows']:,} rows logged again, the first kept; "
        f"e.g. {', '.join(duplicates['examples']) or 'none'}.",
        f"Empty {empty['period']}s: {empty['count']} "
        f"({', '.join(empty['periods']) or 'none'}).",
    ]
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


def write_report(report: Mapping[str, Any], rows: pd.DataFrame, out_dir: Path
                 ) -> tuple[Path, dict[str, Figure]]:
    """Write ``monitoring.html`` into ``out_dir``; returns its path and the figures."""
    drawn = figures(report, rows)
    path = out_dir / "monitoring.html"
    path.write_text(render(report, {name: png_data_uri(f) for name, f in drawn.items()}),
                    encoding="utf-8")
    return path, drawn
