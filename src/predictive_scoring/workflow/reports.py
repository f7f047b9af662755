"""The report and the learned points of a registered model, rebuilt from its data: the
steps behind ``report`` and ``learn-points`` (nothing here prints)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from predictive_scoring.config import BaseConfig, Capacity, DatasetConfig
from predictive_scoring.data.dataset import EventsDataset, TableDataset
from predictive_scoring.learned_points import LearnedPoints
from predictive_scoring.models.scorer import LeadScorer
from predictive_scoring.reporting.report import ReportData
from predictive_scoring.train import Examples
from predictive_scoring.workflow.outputs import learn_settings
from predictive_scoring.workflow.training import Progress, silent


@dataclass(frozen=True)
class LearnedOnTest:
    """A learned points table and its ranking against the model and the hand-set points
    on the model's test leads.

    Attributes:
        learned: The learned table.
        ranking: ``learned_points.comparison`` on the test leads.
        n_test: Test examples ranked.
    """

    learned: LearnedPoints
    ranking: pd.DataFrame
    n_test: int


def _events(dataset: EventsDataset | TableDataset) -> pd.DataFrame | None:
    return dataset.events if isinstance(dataset, EventsDataset) else None


def handoff_volume(examples: Examples, rows: dict[str, np.ndarray], scorer: LeadScorer,
                   base: BaseConfig) -> int:
    """Test leads the hand-set rules put at the hand-off stage or later."""
    from predictive_scoring import evaluate
    from predictive_scoring.stages import FUNNEL

    names = [s.value for s in FUNNEL if s in scorer.rules.stage_thresholds]
    return evaluate.volume_of_stages(examples.rule_stage[rows["test"]],
                                     base.training.handoff_stage.value, names)


def learn_points_for(scorer: LeadScorer, dataset: EventsDataset | TableDataset,
                     config: DatasetConfig, base: BaseConfig, max_rules: int | None,
                     points_per_doubling: float | None,
                     report: Progress = silent) -> LearnedOnTest:
    """Learn a points table from a model on its training leads and rank it on its test
    leads.

    Raises:
        ValueError: The config describes another dataset than the model's.
    """
    from predictive_scoring.learned_points import comparison, learn_points
    from predictive_scoring.train import examples_for_scorer

    report("Rebuilding the training and test examples")
    examples, rows, _ = examples_for_scorer(scorer, dataset, config, base.training)
    events = _events(dataset)
    report("Learning points from the model")
    learned = learn_points(scorer, examples.frame, events, rows["train"], examples.label,
                           learn_settings(max_rules, points_per_doubling))
    test = rows["test"]
    ranking = comparison(scorer, learned, examples.frame.iloc[test], events,
                         examples.label[test], examples.rule_points[test],
                         handoff_volume(examples, rows, scorer, base))
    return LearnedOnTest(learned, ranking, len(test))


def model_report(scorer: LeadScorer, dataset: EventsDataset | TableDataset,
                 config: DatasetConfig, base: BaseConfig, capacity: Capacity,
                 max_rules: int | None, report: Progress = silent,
                 promotion: dict | None = None) -> ReportData:
    """The comparison report's numbers for a registered model on its test leads, with the
    promotion its training run logged (``registry.logged_promotion``), if any.

    Raises:
        ValueError: The config describes another dataset than the model's.
    """
    from predictive_scoring.accounts.training import evaluate_accounts
    from predictive_scoring.leakage import leakage_warnings
    from predictive_scoring.learned_points import learn_points
    from predictive_scoring.reporting.report import report_data
    from predictive_scoring.train import examples_for_scorer, test_weights
    from predictive_scoring.workflow.outputs import dataset_funnel

    report("Rebuilding the examples and learning points from the model")
    events = _events(dataset)
    examples, rows, notes = examples_for_scorer(scorer, dataset, config, base.training)
    warnings = leakage_warnings(examples.frame, examples.label, rows, examples.columns,
                                base.training.leakage_auc)
    learned = learn_points(scorer, examples.frame, events, rows["train"], examples.label,
                           learn_settings(max_rules))
    report("Drawing the figures")
    weights = test_weights(scorer, examples, rows["test"], base.training.seed)
    data = report_data(scorer, examples, rows, events, learned, weights,
                       base.training.handoff_stage, capacity, dataset_funnel(dataset),
                       warnings, notes,
                       None if promotion is None else
                       {"promotion": promotion["promotion"],
                        "preview": promotion.get("promotion_preview")})
    report("Scoring the test accounts")
    return replace(data, accounts=evaluate_accounts(scorer, dataset, examples.frame, rows,
                                                    config, base.training))
