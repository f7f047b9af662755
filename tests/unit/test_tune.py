"""Hyper-parameter search on a small synthetic table: bounds, determinism, no test peeking."""

from __future__ import annotations

import dataclasses

import numpy as np
import optuna
import pandas as pd
import pytest

from predictive_scoring.config import (
    BaseConfig,
    DatasetConfig,
    ModelConfig,
    RulesConfig,
    SearchDimension,
    load_config,
)
from predictive_scoring.models.columns import FeatureColumns
from predictive_scoring.models.tune import TuneResult, suggest_params, tune, tuned_config
from predictive_scoring.train import Examples, TrainingPlan, split_rows
from tests.conftest import REPO
from tests.helpers import message_of

BASE = load_config(REPO / "configs/base.yaml", BaseConfig)
DATASET = load_config(REPO / "configs/datasets/bank_marketing.yaml", DatasetConfig)
RULES = load_config(REPO / "configs/rules/bank_points.yaml", RulesConfig)
LOGREG = load_config(REPO / "configs/models/logreg.yaml", ModelConfig)
LIGHTGBM = load_config(REPO / "configs/models/lightgbm.yaml", ModelConfig)
COLUMNS = FeatureColumns(("industry",), ("employees", "visits"))


def _synthetic_examples(n: int = 2_000, seed: int = 3) -> Examples:
    """Leads whose conversion depends on industry, company size and web visits."""
    rng = np.random.default_rng(seed)
    industry = rng.choice(["software", "retail", "finance", "health"], n)
    employees = rng.lognormal(4, 1.5, n)
    visits = rng.poisson(3, n).astype(float)
    lift = pd.Series(industry).map({"software": 1.0, "finance": 0.5, "retail": -0.5,
                                    "health": 0.0}).to_numpy()
    logit = -2.3 + lift + 0.3 * np.log1p(employees) + 0.25 * visits
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    frame = pd.DataFrame({"lead_id": [f"L{i:05d}" for i in range(n)], "industry": industry,
                          "employees": employees, "visits": visits})
    return Examples(frame, label, None, None, np.zeros(n), np.full(n, "lead"), COLUMNS, None)


@pytest.fixture(scope="module")
def examples() -> Examples:
    return _synthetic_examples()


@pytest.fixture(scope="module")
def rows(examples: Examples) -> dict[str, np.ndarray]:
    return split_rows(examples.frame["lead_id"], None, examples.label, BASE.training)


@pytest.fixture(scope="module")
def logreg_result(examples: Examples, rows: dict[str, np.ndarray]) -> TuneResult:
    return tune(examples, rows, TrainingPlan(DATASET, LOGREG, RULES, BASE), n_trials=4)


def _with_garbage_test_slice(examples: Examples, test: np.ndarray) -> Examples:
    """The same examples with the test slice's labels flipped and its features emptied."""
    label = examples.label.copy()
    label[test] = 1 - label[test]
    frame = examples.frame.copy()
    frame.loc[frame.index[test], ["industry", "employees", "visits"]] = np.nan
    return dataclasses.replace(examples, frame=frame, label=label)


# ------------------------------------------------------------------ suggest_params
def test_suggest_params_returns_typed_values_from_a_fixed_trial() -> None:
    space = {"C": SearchDimension(type="float", low=0.001, high=100.0, log=True),
             "num_leaves": SearchDimension(type="int", low=3, high=63, log=True),
             "boosting_type": SearchDimension(type="categorical", choices=["gbdt", "dart"])}
    trial = optuna.trial.FixedTrial({"C": 0.5, "num_leaves": 7, "boosting_type": "dart"})
    params = suggest_params(trial, space)
    assert params == {"C": 0.5, "num_leaves": 7, "boosting_type": "dart"}
    assert type(params["C"]) is float and type(params["num_leaves"]) is int


def test_suggest_params_names_a_malformed_dimension() -> None:
    trial = optuna.trial.FixedTrial({"num_leaves": 7})
    message = message_of(ValueError, suggest_params, trial,
                         {"num_leaves": SearchDimension(type="int", low=3)})
    assert "search_space.num_leaves" in message and "high=None" in message


# ------------------------------------------------------------------ tune
def test_tune_runs_the_trials_inside_the_search_space(logreg_result: TuneResult) -> None:
    trials = logreg_result.trials
    assert list(trials["number"]) == [0, 1, 2, 3]
    bounds = LOGREG.search_space["C"]
    assert trials["params_C"].between(bounds.low, bounds.high).all()
    assert logreg_result.best_value == trials["value"].min()
    best = trials.loc[trials["value"].idxmin(), "params_C"]
    assert logreg_result.best_params == {"C": best}


def test_tune_is_deterministic_for_a_seed(examples: Examples, rows: dict[str, np.ndarray],
                                          logreg_result: TuneResult) -> None:
    again = tune(examples, rows, TrainingPlan(DATASET, LOGREG, RULES, BASE), n_trials=4)
    pd.testing.assert_frame_equal(again.trials, logreg_result.trials)
    other_seed = BASE.model_copy(update={"training": BASE.training.model_copy(
        update={"seed": BASE.training.seed + 1})})
    other = tune(examples, rows, TrainingPlan(DATASET, LOGREG, RULES, other_seed), n_trials=4)
    assert not np.allclose(other.trials["params_C"], logreg_result.trials["params_C"])


def test_tune_never_reads_the_test_slice(examples: Examples, rows: dict[str, np.ndarray],
                                         logreg_result: TuneResult) -> None:
    garbage = _with_garbage_test_slice(examples, rows["test"])
    result = tune(garbage, rows, TrainingPlan(DATASET, LOGREG, RULES, BASE), n_trials=4)
    pd.testing.assert_frame_equal(result.trials, logreg_result.trials)
    assert result.best_params == logreg_result.best_params


def test_tune_reports_each_trial_in_order(examples: Examples,
                                          rows: dict[str, np.ndarray]) -> None:
    reported: list[tuple[int, dict, float]] = []
    result = tune(examples, rows, TrainingPlan(DATASET, LOGREG, RULES, BASE), n_trials=4,
                  on_trial=lambda number, params, value: reported.append((number, params,
                                                                          value)))
    assert [number for number, _, _ in reported] == [0, 1, 2, 3]
    assert [value for _, _, value in reported] == list(result.trials["value"])
    assert all(set(params) == {"C"} for _, params, _ in reported)


def test_tune_lightgbm_keeps_int_parameters_whole_and_repeats(
        examples: Examples, rows: dict[str, np.ndarray]) -> None:
    quick = tuned_config(LIGHTGBM, {"n_estimators": 200, "n_jobs": 1})
    first = tune(examples, rows, TrainingPlan(DATASET, quick, RULES, BASE), n_trials=2)
    second = tune(examples, rows, TrainingPlan(DATASET, quick, RULES, BASE), n_trials=2)
    pd.testing.assert_frame_equal(first.trials, second.trials)
    for name, dimension in LIGHTGBM.search_space.items():
        values = first.trials[f"params_{name}"]
        assert values.between(dimension.low, dimension.high).all()
        if dimension.type == "int":
            assert all(float(v).is_integer() for v in values)
    assert isinstance(first.best_params["num_leaves"], int)


@pytest.mark.parametrize(("model", "n_trials", "expected"), [
    (LOGREG, 0, "at least 1 trial"),
    (LOGREG.model_copy(update={"search_space": {}}), 2, "no search_space"),
])
def test_tune_refuses_nothing_to_search(examples: Examples, rows: dict[str, np.ndarray],
                                        model: ModelConfig, n_trials: int,
                                        expected: str) -> None:
    message = message_of(ValueError, tune, examples, rows,
                         TrainingPlan(DATASET, model, RULES, BASE), n_trials)
    assert expected in message


# ------------------------------------------------------------------ tuned_config
def test_tuned_config_updates_params_and_leaves_the_original() -> None:
    original = dict(LIGHTGBM.params)
    leaves = original["num_leaves"] + 8
    tuned = tuned_config(LIGHTGBM, {"num_leaves": leaves, "learning_rate": 0.05})
    assert tuned.params["num_leaves"] == leaves and tuned.params["learning_rate"] == 0.05
    assert tuned.params["early_stopping_rounds"] == LIGHTGBM.params["early_stopping_rounds"]
    assert tuned.search_space == LIGHTGBM.search_space
    assert LIGHTGBM.params == original
