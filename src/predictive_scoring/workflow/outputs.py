"""What a training run writes and logs: metrics.json, the plots, the global weights, the
learned points table and the report, and the MLflow run with its bundle."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from predictive_scoring.config import BaseConfig, Capacity
from predictive_scoring.data.dataset import EventsDataset, TableDataset
from predictive_scoring.learned_points import LearnSettings
from predictive_scoring.train import TrainingPlan, TrainingRun
from predictive_scoring.workflow.preview import Preview
from predictive_scoring.workflow.promotion import Promotion


def learn_settings(max_rules: int | None, points_per_doubling: float | None = None
                   ) -> LearnSettings:
    """The learning settings, with the options given (None: the default)."""
    given = {"max_rules": max_rules, "points_per_doubling": points_per_doubling}
    return LearnSettings(**{k: v for k, v in given.items() if v is not None})


def dataset_funnel(dataset: EventsDataset | TableDataset) -> pd.DataFrame | None:
    """Leads reaching each funnel stage (events shape); None for a table (no stages)."""
    from predictive_scoring.stages import funnel_conversion

    if isinstance(dataset, EventsDataset):
        return funnel_conversion(dataset.stage_changes, len(dataset.leads))
    return None


@dataclass(frozen=True)
class ReportSettings:
    """What the learned points and the report of a training run are made with.

    Attributes:
        out: The run's folder.
        max_rules: Most rules in the learned points table (None: the default).
        capacity: Sales capacity for the accuracy page.
    """

    out: Path
    max_rules: int | None
    capacity: Capacity


def learn_and_report(run: TrainingRun, dataset: EventsDataset | TableDataset,
                     base: BaseConfig, settings: ReportSettings,
                     promotion: Promotion | None = None,
                     preview: Preview | None = None) -> list[Path]:
    """learned_points.yaml and report.html of a training run; the learned table's test
    metrics go into ``run.metrics["learned_points"]`` and the accuracy page into
    ``run.metrics["accuracy_page"]``. The report shows the promotion and its preview
    when given. Returns the files written."""
    from predictive_scoring.learned_points import learn_points, write_rules
    from predictive_scoring.reporting.report import report_data
    from predictive_scoring.reporting.sections import write_report

    events = dataset.events if isinstance(dataset, EventsDataset) else None
    scorer, rows = run.trained.scorer, run.trained.rows
    learned = learn_points(scorer, run.examples.frame, events, rows["train"],
                           run.examples.label, learn_settings(settings.max_rules))
    data = report_data(scorer, run.examples, rows, events, learned, run.weights,
                       base.training.handoff_stage, settings.capacity,
                       dataset_funnel(dataset), run.warnings, run.metrics["notes"],
                       None if promotion is None else promotion_section(promotion, preview))
    data = replace(data, accounts=run.accounts)
    rules = learned.rules
    run.metrics["learned_points"] = {
        **{k: float(v) for k, v in data.ranking.loc["learned points"].items()},
        "rules": len(rules.event_rules) + len(rules.attribute_rules),
        "starting_points": rules.starting_points, "fidelity": learned.fidelity,
        "edits": data.edits["change"].value_counts().to_dict()}
    run.metrics["accuracy_page"] = data.accuracy
    header = "Learned points of this training run (predictive-scoring train)."
    out = settings.out
    return [write_rules(rules, out / "learned_points.yaml", header),
            write_report(data, out / "report.html")]


def promotion_section(promotion: Promotion, preview: Preview | None) -> dict[str, Any]:
    """What the report's promotion section shows: metrics.json's two blocks."""
    return {"promotion": promotion.block(),
            "preview": None if preview is None else preview.block()}


def training_figures(run: TrainingRun, base: BaseConfig) -> dict[str, object]:
    """The plots a person reads after training: model vs rules (vs oracle) on test."""
    from predictive_scoring.models.scorer import score_0_100
    from predictive_scoring.reporting.driver_plots import beeswarm_figure, importance_figure
    from predictive_scoring.reporting.plots import (
        calibration_figure,
        gain_figure,
        pr_figure,
        roc_figure,
        score_distribution_figure,
        stage_conversion_figure,
    )

    test = run.trained.rows["test"]
    examples = run.examples
    y = examples.label[test]
    p_model = run.trained.test_probability
    scorers = {"model": p_model, "rules (points)": examples.rule_points[test]}
    probabilities = {"model": p_model}
    if examples.truth is not None:
        scorers["oracle"] = probabilities["oracle"] = examples.truth[test]
    stages = run.metrics["stages"]
    return {
        "roc": roc_figure(y, scorers),
        "precision_recall": pr_figure(y, scorers),
        "calibration": calibration_figure(y, probabilities, base.training.ece_bins),
        "gain": gain_figure(y, scorers, (0.05, 0.1, 0.2)),
        "score_distributions": score_distribution_figure(score_0_100(p_model),
                                                         examples.rule_points[test], y),
        "stage_conversion": stage_conversion_figure(
            pd.DataFrame.from_dict(stages["model"], orient="index"),
            pd.DataFrame.from_dict(stages["rules"], orient="index")),
        "shap_beeswarm": beeswarm_figure(run.weights.contributions.values,
                                         run.weights.features,
                                         run.weights.contributions.fields),
        "shap_importance": importance_figure(run.weights.importance, run.weights.groups),
    }


def json_value(value: object) -> object:
    """``json.dumps``'s fallback for numpy scalars."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_metrics(metrics: dict[str, Any], out: Path) -> Path:
    """metrics.json in the run's folder."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2, default=json_value), encoding="utf-8")
    return path


def write_training_outputs(run: TrainingRun, base: BaseConfig, out: Path) -> list[Path]:
    """metrics.json, the global weights (CSV) and the plots. Returns the files written:
    metrics.json first, the weights second, then the plots."""
    from predictive_scoring.reporting.plots import save_figures

    metrics_path = write_metrics(run.metrics, out)
    importance_path = out / "global_importance.csv"
    run.weights.importance.to_csv(importance_path, index=False)
    plots = save_figures(training_figures(run, base), out / "plots")
    return [metrics_path, importance_path, *plots]


def log_run(run: TrainingRun, plan: TrainingPlan, data_fingerprint: str,
            tags: dict[str, object]) -> None:
    """Log the run's params, metrics, warnings and global weights in the active run."""
    from predictive_scoring.tracking import store

    name = plan.config.name
    store.log_params({"dataset": name, "model_kind": run.metrics["model_kind"],
                      "calibration": run.metrics["calibration"], **run.metrics["params"]})
    store.set_tags({"dataset_fingerprint": data_fingerprint, "warnings": len(run.warnings),
                    **tags})
    store.log_metrics(run.metrics["model"])
    store.log_metrics({k: run.metrics[k] for k in ("rules", "oracle") if run.metrics[k]})
    store.log_metrics(run.metrics.get("accounts") or {}, "accounts")
    store.log_dict({"warnings": run.warnings, "notes": run.metrics["notes"]}, "warnings.json")
    weights = run.weights
    store.log_metrics(dict(zip(weights.groups["group"], weights.groups["mean_abs"],
                               strict=True)), "importance")
    store.log_dict({"features": weights.importance.to_dict(orient="records"),
                    "groups": weights.groups.to_dict(orient="records")},
                   "global_importance.json")


def log_promotion(promotion: Promotion, preview: Preview | None) -> None:
    """The promotion block (and the preview) in the active run: a JSON artifact, the
    three values as metrics, the decision as a tag."""
    from predictive_scoring.tracking import store
    from predictive_scoring.tracking.registry import PROMOTION_FILE

    block = promotion.block()
    store.log_dict({"promotion": block,
                    "promotion_preview": None if preview is None else preview.block()},
                   PROMOTION_FILE)
    values = {k: block[k] for k in ("champion", "challenger", "rules")
              if block[k] is not None}
    if block["difference_interval"] is not None:
        values |= dict(zip(("difference_low", "difference_high"),
                           block["difference_interval"], strict=True))
    store.log_metrics(values, "promotion")
    store.set_tags({"promotion": promotion.decision})
