"""The one training flow, whichever engine holds the examples.

examples -> leakage check -> (``--strict`` stops) -> enough data? -> (tune) -> fit ->
calibrate and evaluate -> global weights -> the run's record. An :class:`ExampleSource`
says where the examples live: :class:`InMemorySource` (a dataset loaded on this machine)
or ``distributed.train.PartitionedSource`` (Parquet read partition by partition on a Dask
cluster); the flow itself is written once, here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import pandas as pd

from predictive_scoring.data.dataset import EventsDataset, TableDataset
from predictive_scoring.explain import global_weights, sample_rows
from predictive_scoring.leakage import leakage_warnings
from predictive_scoring.models.columns import model_frame
from predictive_scoring.train import (
    EXPLANATION_ROWS,
    Examples,
    ModelChooser,
    TrainedModel,
    TrainingError,
    TrainingPlan,
    TrainingRun,
    build_examples,
    bundle_input,
    check_enough_data,
    train_model,
    training_run,
)
from predictive_scoring.workflow.promotion import TestLeads

Progress = Callable[[str], None]
"""Called with the name of each step of a run as it starts (the CLI shows it)."""


def silent(_: str) -> None:
    """A :data:`Progress` that says nothing."""
    return None


@dataclass
class Built:
    """The examples an :class:`ExampleSource` built, and the notes on what it left out.

    Attributes:
        examples: The examples (the Dask engine keeps the features on the workers: its
            ``frame`` holds the outcome columns only).
        rows: Row positions of the train, valid and test slices.
        notes: What was left out of the data, and why.
    """

    examples: Examples
    rows: dict[str, np.ndarray]
    notes: list[str]


class ExampleSource(Protocol):
    """Where a training run's examples live, and the steps that depend on it."""

    engine: str
    """``local`` or ``dask`` (logged with the run)."""

    def build(self, plan: TrainingPlan, report: Progress) -> Built:
        """The examples, split, with their behaviour features and the points."""
        ...

    def leakage(self, built: Built, threshold: float) -> list[str]:
        """``leakage.leakage_warnings`` over every model input column."""
        ...

    def fit(self, built: Built, plan: TrainingPlan, report: Progress) -> TrainedModel:
        """Fit, calibrate and evaluate on the test slice."""
        ...

    def test_sample(self, built: Built, seed: int) -> pd.DataFrame:
        """Model input of a seeded sample of at most ``EXPLANATION_ROWS`` test rows."""
        ...

    def test_leads(self, built: Built) -> TestLeads:
        """The raw test rows and their events: what the champion scores."""
        ...

    def bundle_example(self, built: Built, run: TrainingRun) -> pd.DataFrame:
        """A few raw test leads in the bundle's input format."""
        ...


@dataclass
class InMemorySource:
    """A dataset loaded and validated on this machine (either shape).

    Attributes:
        dataset: The dataset ``plan.config`` describes.
    """

    dataset: EventsDataset | TableDataset
    engine: str = "local"

    @property
    def events(self) -> pd.DataFrame | None:
        """The dataset's events (events shape), else None."""
        return self.dataset.events if isinstance(self.dataset, EventsDataset) else None

    def build(self, plan: TrainingPlan, report: Progress) -> Built:
        report("Building the examples")
        return Built(*build_examples(self.dataset, plan.config, plan.rules,
                                     plan.base.training))

    def leakage(self, built: Built, threshold: float) -> list[str]:
        examples = built.examples
        return leakage_warnings(examples.frame, examples.label, built.rows, examples.columns,
                                threshold)

    def fit(self, built: Built, plan: TrainingPlan, report: Progress) -> TrainedModel:
        report(f"Training {plan.model.kind}")
        return train_model(built.examples, built.rows, plan)

    def test_sample(self, built: Built, seed: int) -> pd.DataFrame:
        test = built.rows["test"]
        picked = test[sample_rows(len(test), EXPLANATION_ROWS, seed)]
        return model_frame(built.examples.frame.iloc[picked], built.examples.columns)

    def test_leads(self, built: Built) -> TestLeads:
        test, examples = built.rows["test"], built.examples
        frame = examples.frame.iloc[test].reset_index(drop=True)
        events = self.events
        if events is not None:
            events = events.loc[events["lead_id"].isin(frame["lead_id"])]
        return TestLeads(frame, events, examples.label[test], examples.rule_points[test],
                         examples.rule_stage[test])

    def bundle_example(self, built: Built, run: TrainingRun) -> pd.DataFrame:
        test = built.rows["test"][:EXAMPLE_LEADS]
        return bundle_input(built.examples.frame.iloc[test], self.events, run.trained.scorer)


EXAMPLE_LEADS = 3
"""Raw leads logged with a bundle as its input example."""


@dataclass
class Trained:
    """One training run and what its source can still give (the test leads, an input
    example for the bundle).

    Attributes:
        run: The run's record (metrics.json's content, the scorer, the weights).
        built: The examples it was trained on.
        source: Where they live.
    """

    run: TrainingRun
    built: Built
    source: ExampleSource = field(repr=False)


def train(source: ExampleSource, plan: TrainingPlan, choose_model: ModelChooser | None = None,
          report: Progress = silent) -> Trained:
    """Examples -> leakage check -> (tune) -> fit -> calibrate -> evaluate -> weights.

    Args:
        source: Where the examples live.
        plan: The configs, and whether leakage warnings stop the run.
        choose_model: Optional search returning the model config to train with (it
            reads the examples in memory: the local engine).
        report: Called with each step's name.

    Raises:
        TrainingError: Too little data, or leakage warnings when ``plan.strict``.
    """
    training = plan.base.training
    built = source.build(plan, report)
    report("Checking for leakage")
    warnings = source.leakage(built, training.leakage_auc)
    if plan.strict and warnings:
        raise TrainingError("stopped by --strict: " + "; ".join(warnings))
    check_enough_data(built.examples.label[built.rows["train"]], training)
    if choose_model is not None:
        plan = replace(plan, model=choose_model(built.examples, built.rows, plan.model))
    trained = source.fit(built, plan, report)
    report("Measuring the global weights on the test leads")
    weights = global_weights(trained.scorer, source.test_sample(built, training.seed))
    return Trained(training_run(built.examples, trained, plan, warnings, built.notes, weights),
                   built, source)


def run_training(dataset: EventsDataset | TableDataset, plan: TrainingPlan,
                 choose_model: ModelChooser | None = None) -> TrainingRun:
    """:func:`train` on a dataset in memory: the run's record.

    Raises:
        TrainingError: Too little data, or leakage warnings when ``plan.strict``.
    """
    return train(InMemorySource(dataset), plan, choose_model).run
