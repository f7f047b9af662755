"""Each slice predicted once: the fit hands back the raw probability of the training and
validation rows, and training gives the same model, calibration, stage thresholds and
test metrics as predicting every slice after the fit."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from predictive_scoring.config import DatasetConfig, ModelConfig, load_config
from predictive_scoring.data.dataset import load_events_dataset
from predictive_scoring.data.snapshots import DECIDED
from predictive_scoring.data.synthetic import simulate_into
from predictive_scoring.explain import sample_rows
from predictive_scoring.models import kinds
from predictive_scoring.models.columns import FeatureColumns, model_frame
from predictive_scoring.models.kinds.base import FIRST_STAGE_ROUNDS
from predictive_scoring.models.kinds.lightgbm import (
    EARLY_STOPPING_KEY,
    classifier_params,
    first_stage,
)
from predictive_scoring.models.scorer import build_pipeline
from predictive_scoring.stages import Stage
from predictive_scoring.train import (
    EXPLANATION_ROWS,
    Examples,
    TrainingPlan,
    examples_from_events,
    finish_training,
    train_model,
)
from tests.conftest import BASE, REPO, SIMULATED
from tests.conftest import CLASSIC_RULES as RULES

pytestmark = pytest.mark.heavy

COLUMNS = FeatureColumns(("plan",), ("seats", "visits"),
                         {"plan": "fit", "seats": "fit", "visits": "engagement"})


def leads(seed: int, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Table-shaped leads (a missing plan now and then) converting on plan and seats."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"plan": rng.choice(["free", "pro", "team", None], n),
                          "seats": rng.integers(1, 50, n).astype(float),
                          "visits": np.where(rng.random(n) < 0.2, np.nan,
                                             rng.poisson(3, n).astype(float))})
    logit = -1.0 + 1.5 * (frame["plan"] == "pro") + frame["seats"] / 25
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8).to_numpy()
    return model_frame(frame, COLUMNS), label


def model_of(kind: str, **params: object) -> ModelConfig:
    model = load_config(REPO / f"configs/models/{kind}.yaml", ModelConfig)
    kept = {k: v for k, v in model.params.items() if k != EARLY_STOPPING_KEY}
    return model.model_copy(update={"params": {**kept, **params}})


LIGHTGBM = {
    "stops early": {"n_estimators": 2000, "learning_rate": 0.3, EARLY_STOPPING_KEY: 5},
    "never stops": {"n_estimators": 40, EARLY_STOPPING_KEY: 200},
    "no early stopping": {"n_estimators": 30},
}


@pytest.mark.parametrize(("kind", "params"), [
    *(("lightgbm", params) for params in LIGHTGBM.values()), ("logreg", {})],
    ids=[*LIGHTGBM, "logreg"])
def test_the_fit_returns_what_the_fitted_pipeline_predicts(kind: str, params: dict) -> None:
    """The training, validation and other rows' scores are the fitted pipeline's
    predictions, including other rows with a plan never seen in training and values
    outside the training range; scoring other rows does not change the model."""
    (x, y), model = leads(3, 3_000), model_of(kind, **params)
    train, valid = (x.iloc[:2_000], y[:2_000]), (x.iloc[2_000:], y[2_000:])
    test, _ = leads(6, 700)
    odd = test.iloc[:50].copy()
    odd["plan"], odd["seats"] = "enterprise", 1e6
    kind_ = kinds.get(kind)
    pipeline, raw_train, raw_valid, raw_test, raw_odd = kind_.fit_scored(
        build_pipeline(model, COLUMNS), model, train, valid, others=[test, odd])
    for raw, rows in ((raw_train, train[0]), (raw_valid, valid[0]), (raw_test, test),
                      (raw_odd, odd)):
        assert raw.shape == (len(rows),)
        np.testing.assert_allclose(raw, pipeline.predict_proba(rows)[:, 1], rtol=0,
                                   atol=1e-12)
    # and the pipeline is the one fit() makes
    again = kind_.fit(build_pipeline(model, COLUMNS), model, train, valid)
    held_out, _ = leads(4, 500)
    np.testing.assert_array_equal(pipeline.predict_proba(held_out),
                                  again.predict_proba(held_out))


@pytest.mark.parametrize("name", ["stops early", "never stops"])
def test_lightgbm_keeps_the_model_plain_early_stopping_makes(name: str) -> None:
    """Taking the rounds after the best back out of the booster leaves the model LightGBM's
    own early stopping keeps: the same trees, the same predictions on unseen rows."""
    (x, y), model = leads(5, 3_000), model_of("lightgbm", **LIGHTGBM[name])
    train, valid = (x.iloc[:2_000], y[:2_000]), (x.iloc[2_000:], y[2_000:])
    pipeline, *_ = kinds.get("lightgbm").fit_scored(build_pipeline(model, COLUMNS), model,
                                                    train, valid)
    plain = build_pipeline(model, COLUMNS)
    plain[-1].set_params(**kinds.get("lightgbm").capacity(model, len(train[1]),
                                                          int(train[1].sum())))
    prep = plain[:-1]
    plain[-1].fit(prep.fit_transform(*train), train[1], eval_X=(prep.transform(valid[0]),),
                  eval_y=(valid[1],), categorical_feature=[0],
                  callbacks=[lgb.early_stopping(model.params[EARLY_STOPPING_KEY],
                                                verbose=False)])
    assert pipeline[-1].best_iteration_ == plain[-1].best_iteration_
    assert pipeline[-1].booster_.num_trees() == plain[-1].best_iteration_
    held_out, _ = leads(6, 800)
    np.testing.assert_allclose(pipeline.predict_proba(held_out),
                               plain.predict_proba(held_out), rtol=0, atol=1e-12)
    assert classifier_params(model)["n_estimators"] == LIGHTGBM[name]["n_estimators"]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Examples, DatasetConfig,
                                                                 dict[str, np.ndarray]]:
    config = simulate_into(SIMULATED, 4_000, 13, tmp_path_factory.mktemp("sim"))
    config = config.model_copy(update={"snapshots": config.snapshots.model_copy(
        update={"decision_after": Stage.OPPORTUNITY})})
    examples, rows, _ = examples_from_events(load_events_dataset(config, Path(".")), config,
                                             RULES, BASE.training)
    return examples, config, rows


@pytest.mark.parametrize("decisions", [True, False], ids=["decisions first", "wins alone"])
@pytest.mark.parametrize("kind", ["lightgbm", "logreg"])
def test_training_matches_predicting_every_slice_after_the_fit(simulated: tuple, kind: str,
                                                               decisions: bool) -> None:
    examples, config, rows = simulated
    if not decisions:
        examples = replace(examples, frame=examples.frame.drop(columns=DECIDED))
        config = config.model_copy(update={"snapshots": config.snapshots.model_copy(
            update={"decision_after": None})})
    plan = TrainingPlan(config, load_config(REPO / f"configs/models/{kind}.yaml",
                                            ModelConfig), RULES, BASE)
    trained = train_model(examples, rows, plan)
    rounds = trained.metrics.get("decisions", {}).get("first_stage_rounds")
    if not decisions:
        assert rounds is None
    elif kind == "logreg":
        assert rounds == 0  # the kind learns the target alone
    else:
        assert rounds > 0
    # The way before: the whole model frame, every slice predicted by the fitted pipeline
    pipeline = trained.scorer.pipeline
    whole = model_frame(examples.frame, examples.columns)
    raw = {name: pipeline.predict_proba(whole.iloc[r])[:, 1] for name, r in rows.items()}
    sample = whole.iloc[rows["train"]].iloc[sample_rows(len(rows["train"]),
                                                        EXPLANATION_ROWS,
                                                        BASE.training.seed)]
    before = finish_training(examples, rows, pipeline, raw, plan, sample)
    assert trained.scorer.calibrator.method == before.scorer.calibrator.method
    np.testing.assert_allclose(trained.test_probability, before.test_probability,
                               rtol=0, atol=1e-9)
    assert trained.scorer.stage_thresholds.keys() == before.scorer.stage_thresholds.keys()
    for stage, bar in before.scorer.stage_thresholds.items():
        assert trained.scorer.stage_thresholds[stage] == pytest.approx(bar, abs=1e-9)
    assert trained.metrics["model"] == pytest.approx(before.metrics["model"], abs=1e-9)
    assert trained.calibration_losses == pytest.approx(before.calibration_losses, abs=1e-9)


def decisions_of(label: np.ndarray, x: pd.DataFrame, seed: int) -> np.ndarray:
    """Each win is a decision, and so is a loss, which comes more often with more visits."""
    rng = np.random.default_rng(seed)
    lost = rng.random(len(label)) < 0.2 * np.nan_to_num(x["visits"].to_numpy(), nan=1.0)
    return (label.astype(bool) | lost).astype(np.int8)


@pytest.mark.parametrize("name", ["stops early", "no early stopping"])
def test_decisions_are_learnt_first_and_the_target_continues_in_one_booster(name: str
                                                                           ) -> None:
    """With decisions, the booster's first trees are a model of the decisions alone (cut to
    its best round) and the trees after them fit the target from there; every score the
    fit hands back is still what the fitted pipeline predicts, unseen rows included."""
    (x, y), model = leads(8, 3_000), model_of("lightgbm", **LIGHTGBM[name])
    decided = decisions_of(y, x, 9)
    assert decided.sum() > 1.2 * y.sum()
    train, valid = (x.iloc[:2_000], y[:2_000]), (x.iloc[2_000:], y[2_000:])
    test, _ = leads(6, 700)
    odd = test.iloc[:50].copy()
    odd["plan"], odd["seats"] = "enterprise", 1e6
    pipeline, *raws = kinds.get("lightgbm").fit_scored(
        build_pipeline(model, COLUMNS), model, train, valid, others=[test, odd],
        decided=(decided[:2_000], decided[2_000:]))
    for raw, rows in zip(raws, (train[0], valid[0], test, odd), strict=True):
        np.testing.assert_allclose(raw, pipeline.predict_proba(rows)[:, 1], rtol=0,
                                   atol=1e-12)
    first = first_stage(build_pipeline(model, COLUMNS)[-1], model,
                        (pipeline[:-1].transform(train[0]), decided[:2_000]),
                        (pipeline[:-1].transform(valid[0]), decided[2_000:]), [0], {})
    booster, held_out = pipeline[-1].booster_, pipeline[:-1].transform(leads(4, 500)[0])
    n_first, rounds = first.num_trees(), pipeline[-1].best_iteration_ or booster.num_trees()
    assert 0 < n_first < rounds <= booster.num_trees()
    assert getattr(pipeline[-1], FIRST_STAGE_ROUNDS) == n_first
    np.testing.assert_allclose(booster.predict(held_out, num_iteration=n_first, raw_score=True),
                               first.predict(held_out, raw_score=True), rtol=0, atol=1e-12)
    # the trees after the first stage moved the scores toward the target
    assert not np.allclose(booster.predict(held_out, num_iteration=rounds),
                           first.predict(held_out), atol=1e-3)


def test_decisions_that_are_only_wins_fit_the_target_alone() -> None:
    """Decisions that say nothing the target does not (every decision a win) leave the model
    the one fitted without them."""
    (x, y), model = leads(5, 3_000), model_of("lightgbm", **LIGHTGBM["stops early"])
    train, valid = (x.iloc[:2_000], y[:2_000]), (x.iloc[2_000:], y[2_000:])
    held_out, _ = leads(6, 800)
    kind = kinds.get("lightgbm")
    with_wins, *_ = kind.fit_scored(build_pipeline(model, COLUMNS), model, train, valid,
                                    decided=(train[1], valid[1]))
    alone, *_ = kind.fit_scored(build_pipeline(model, COLUMNS), model, train, valid)
    np.testing.assert_array_equal(with_wins.predict_proba(held_out),
                                  alone.predict_proba(held_out))
    assert getattr(with_wins[-1], FIRST_STAGE_ROUNDS) == 0
