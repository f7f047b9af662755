"""Hyper-parameter search (``--tune N``) scored on the time-ordered validation slice.

Each trial draws parameters from the model YAML's ``search_space``, fits the pipeline on
the training slice (LightGBM stops early on the validation slice, as in training) and
scores the log loss of the raw probabilities on the validation slice. With time in the
data, :func:`~predictive_scoring.train.split_rows` puts the validation leads after the
training leads, so the search rewards parameters that hold up on later leads, which
shuffled cross-validation folds (future leads teaching the model about past ones) would
not. The test slice is never read while tuning: it stays an unbiased estimate for the
final model, which the caller trains with :func:`~predictive_scoring.train.train_model`
on :func:`tuned_config`.

Why Optuna: it is actively maintained and widely used; its define-by-run API builds the
search space straight from the YAML at trial time (no second, hand-written space to keep
in step); its TPE sampler usually finds better parameters than grid or random search at
the small trial budgets a 2-core machine affords; and a seeded sampler (here
``base.training.seed``) makes a search reproducible. No pruner is used: a trial is one
fit that LightGBM's early stopping already cuts short, and logistic regression has no
intermediate values to prune on.

Logging and progress display are left to the caller through ``on_trial`` (the CLI logs a
nested MLflow run per trial and advances a progress bar), so this module does not import
mlflow and is testable without a tracking store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.metrics import log_loss

from predictive_scoring.config import ModelConfig, SearchDimension
from predictive_scoring.models.columns import FeatureColumns, model_frame
from predictive_scoring.models.kinds.base import Weights
from predictive_scoring.models.scorer import build_pipeline, fit_scored
from predictive_scoring.train import Examples, TrainingPlan, check_enough_data

TrialCallback = Callable[[int, dict[str, Any], float], None]
"""Called after each trial with its number (from 0), its parameters and its validation
log loss."""

Slice = tuple[pd.DataFrame, np.ndarray]


@dataclass(frozen=True)
class TuneResult:
    """What a search found.

    Attributes:
        best_params: The searched parameters of the trial with the lowest validation log
            loss (only the search-space keys; merge them with :func:`tuned_config`).
        best_value: That trial's validation log loss.
        trials: One row per trial, in order: ``number``, ``value`` (validation log loss)
            and one ``params_<name>`` column per searched parameter.
    """

    best_params: dict[str, Any]
    best_value: float
    trials: pd.DataFrame


# ------------------------------------------------------------------ search space
def suggest_params(trial: optuna.trial.BaseTrial,
                   search_space: dict[str, SearchDimension]) -> dict[str, Any]:
    """Draw one value per dimension of a model YAML's search space.

    Args:
        trial: The Optuna trial (a ``FixedTrial`` replays given values).
        search_space: Parameter name -> its range, as in ``configs/models/*.yaml``.

    Returns:
        Parameter name -> value: ``int`` for int dimensions, ``float`` for float ones,
        one of the ``choices`` for categorical ones.

    Raises:
        ValueError: A dimension lacks what its type needs, naming the parameter.
    """
    return {name: _suggest(trial, name, dimension) for name, dimension in search_space.items()}


def _suggest(trial: optuna.trial.BaseTrial, name: str, dimension: SearchDimension) -> Any:
    if dimension.type == "categorical":
        if not dimension.choices:
            raise ValueError(f"search_space.{name}: a categorical dimension needs a non-empty "
                             "'choices' list")
        return trial.suggest_categorical(name, dimension.choices)
    low, high = _bounds(name, dimension)
    if dimension.type == "int":
        return trial.suggest_int(name, int(low), int(high), log=dimension.log)
    return trial.suggest_float(name, low, high, log=dimension.log)


def _bounds(name: str, dimension: SearchDimension) -> tuple[float, float]:
    low, high = dimension.low, dimension.high
    if low is None or high is None or low > high:
        raise ValueError(f"search_space.{name}: an {dimension.type} dimension needs "
                         f"low <= high, got low={low}, high={high}")
    if dimension.type == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise ValueError(f"search_space.{name}: an int dimension needs whole-number bounds, "
                         f"got low={low}, high={high}")
    if dimension.log and low <= 0:
        raise ValueError(f"search_space.{name}: a log-scaled dimension needs low > 0, "
                         f"got low={low}")
    return float(low), float(high)


def tuned_config(model_config: ModelConfig, best_params: dict[str, Any]) -> ModelConfig:
    """A copy of the model config whose params carry the tuned values (the rest kept)."""
    return model_config.model_copy(update={"params": {**model_config.params, **best_params}})


# ------------------------------------------------------------------ the search
def validation_log_loss(model_config: ModelConfig, columns: FeatureColumns, train: Slice,
                        valid: Slice, weights: Weights | None = None) -> float:
    """Fit on the training slice and return the raw probabilities' validation log loss
    (both weighted by the examples' weights when given, as training fits)."""
    _, _, raw_valid = fit_scored(build_pipeline(model_config, columns), model_config, train,
                                 valid, weights)
    return float(log_loss(valid[1], raw_valid, labels=[0, 1],
                          sample_weight=None if weights is None else weights[1]))


def tune(examples: Examples, rows: dict[str, np.ndarray], plan: TrainingPlan, n_trials: int,
         on_trial: TrialCallback | None = None) -> TuneResult:
    """Search the model's hyper-parameters on the validation slice with seeded TPE.

    Only the ``train`` and ``valid`` rows are read; the ``test`` slice (features and
    labels) is never touched, so the final model's test metrics stay unbiased. For a
    given ``plan.base.training.seed`` the search is deterministic: the sampler is seeded and
    every fit is (logistic regression's solver, LightGBM's default fixed seeds), and
    trials run one after another since LightGBM already uses both cores.

    Args:
        examples: Labelled examples (not modified).
        rows: Row positions of the ``train``, ``valid`` and ``test`` slices.
        plan: The run's configs: the dataset's names the study, the model's params and
            ``search_space`` are searched, ``base.training.seed`` seeds the sampler (the
            points baseline is not read: the objective is log loss).
        n_trials: Number of trials (at least 1).
        on_trial: Called after each trial with its number, parameters and validation
            log loss.

    Returns:
        The best parameters, their validation log loss and every trial.

    Raises:
        ValueError: ``n_trials`` below 1, or an empty or malformed search space.
        TrainingError: The training slice has too few positives or negatives.
    """
    model_config, training = plan.model, plan.base.training
    _check_search(model_config, n_trials)
    features = model_frame(examples.frame, examples.columns)
    train, valid = (_slice_of(features, examples.label, rows[name]) for name in ("train", "valid"))
    check_enough_data(train[1], training)
    weights = examples.weights(rows)

    def objective(trial: optuna.Trial) -> float:
        params = suggest_params(trial, model_config.search_space)
        return validation_log_loss(tuned_config(model_config, params), examples.columns,
                                   train, valid, weights)

    with _quiet_optuna():
        study = optuna.create_study(
            direction="minimize", study_name=f"{plan.config.name}-{model_config.kind}",
            sampler=optuna.samplers.TPESampler(seed=training.seed))
        study.optimize(objective, n_trials=n_trials, callbacks=_callbacks(on_trial))
    return TuneResult(dict(study.best_params), float(study.best_value),
                      study.trials_dataframe(attrs=("number", "value", "params")))


def _check_search(model_config: ModelConfig, n_trials: int) -> None:
    if n_trials < 1:
        raise ValueError(f"--tune needs at least 1 trial, got {n_trials}")
    if not model_config.search_space:
        raise ValueError(f"the {model_config.kind} model config has no search_space to tune; "
                         f"add one to configs/models/{model_config.kind}.yaml (the other "
                         "model configs there have one to copy)")


def _slice_of(features: pd.DataFrame, label: np.ndarray, rows: np.ndarray) -> Slice:
    return features.iloc[rows], label[rows]


def _callbacks(on_trial: TrialCallback | None) -> list[Callable[[optuna.Study,
                                                                 optuna.trial.FrozenTrial],
                                                                None]]:
    if on_trial is None:
        return []
    return [lambda _study, trial: on_trial(trial.number, dict(trial.params), float(trial.value))]


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Hide Optuna's INFO lines (study created, each trial finished), then restore."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)
