"""Capacity that fits the data: on a few hundred leads the model is never constant, the
rule never asks for more rows than the data has, and training says so in one paragraph
when the model cannot beat the points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from predictive_scoring import explain
from predictive_scoring.config import ModelConfig, load_config
from predictive_scoring.data.dataset import load_dataset
from predictive_scoring.models.columns import model_frame
from predictive_scoring.models.kinds.lightgbm import LightGBMKind, capacity_params
from predictive_scoring.train import TrainingPlan, TrainingRun, points_note
from predictive_scoring.workflow.training import run_training
from tests.conftest import BASE, REPO
from tests.small_export import EXPORT_RULES as RULES
from tests.small_export import crm_export

LIGHTGBM = load_config(REPO / "configs/models/lightgbm.yaml", ModelConfig)
def train(folder: Path, n: int) -> TrainingRun:
    config = crm_export(folder, n)
    return run_training(load_dataset(config, Path(".")),
                        TrainingPlan(config, LIGHTGBM, RULES, BASE))


@pytest.mark.parametrize("n", [300, 1_000])
def test_small_data_gives_a_model_that_is_not_constant(tmp_path: Path, n: int) -> None:
    run = train(tmp_path, n)
    metrics = run.metrics
    assert len(np.unique(run.trained.test_probability)) >= 5
    scorer = run.trained.scorer
    test = run.examples.frame.iloc[run.trained.rows["test"]]
    contributions = explain.contributions(scorer, model_frame(test, scorer.columns))
    assert np.abs(contributions.values).max() > 0.01
    assert metrics["model"]["roc_auc"] > 0.6
    assert metrics["capacity"]["min_child_samples"] <= metrics["n_train"] // 20


def test_without_the_capacity_rule_the_same_data_gives_a_constant_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LightGBMKind, "capacity", lambda self, model, n, positives: {})
    run = train(tmp_path, 300)
    assert len(np.unique(run.trained.test_probability)) == 1
    assert run.metrics["model"]["roc_auc"] == 0.5


@pytest.mark.parametrize("n_rows", [50, 180, 1_000, 10_000, 100_000, 2_000_000])
@pytest.mark.parametrize("rate", [0.01, 0.05, 0.3])
def test_the_rule_never_asks_for_more_than_the_data_has(n_rows: int, rate: float) -> None:
    params = LIGHTGBM.params
    positives = int(n_rows * rate)
    fitted = capacity_params(params, n_rows, positives)
    assert fitted["min_child_samples"] <= max(5, n_rows // 20)
    assert fitted["min_child_samples"] <= params["min_child_samples"]
    assert 2 <= fitted["num_leaves"] <= params["num_leaves"]
    assert fitted["num_leaves"] <= max(2, positives // 10)
    assert 1 <= fitted["min_data_in_bin"] <= max(1, n_rows // 100)
    assert params["learning_rate"] <= fitted["learning_rate"] <= 0.1
    # smoothing keeps its ratio to the leaf minimum
    assert fitted["path_smooth"] / fitted["min_child_samples"] == pytest.approx(
        params["path_smooth"] / params["min_child_samples"])
    if positives >= 2_000 and n_rows >= 20 * params["min_child_samples"]:
        assert fitted == {"min_child_samples": params["min_child_samples"],
                          "num_leaves": params["num_leaves"], "min_data_in_bin": 3,
                          "path_smooth": params["path_smooth"],
                          "learning_rate": params["learning_rate"]}


def test_a_model_below_the_points_is_said_in_one_paragraph() -> None:
    metrics = {"model": {"roc_auc": 0.58}, "rules": {"roc_auc": 0.634}, "n_test": 60,
               "n_train": 180}
    note = points_note(metrics)
    assert note is not None and "\n" not in note
    assert "0.580" in note and "0.634" in note and "keep scoring leads with the points" in note
    assert points_note({**metrics, "model": {"roc_auc": 0.7}}) is None
