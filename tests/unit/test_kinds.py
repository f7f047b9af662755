"""Model kinds: the catalog, the config and command line reading it, and a kind added
without touching its callers (training, explanations, one-lead scoring, the Dask check)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline

from predictive_scoring import explain
from predictive_scoring.config import ConfigError, ModelConfig, load_config
from predictive_scoring.distributed import train as dask_training
from predictive_scoring.models import kinds
from predictive_scoring.models.columns import FeatureColumns, model_frame
from predictive_scoring.models.kinds.base import ModelKind
from predictive_scoring.models.kinds.logreg import LogisticRegressionKind
from predictive_scoring.models.scorer import (
    LeadScorer,
    build_pipeline,
    choose_calibrator,
    fit_pipeline,
)
from predictive_scoring.online import OnlineScorer, RawLead
from predictive_scoring.stages import Stage
from tests.conftest import CLASSIC_RULES, REPO
from tests.helpers import message_of

COLUMNS = FeatureColumns(("plan",), ("seats",), {"plan": "fit", "seats": "fit"})


def plan_leads(seed: int, n: int = 600) -> tuple[pd.DataFrame, np.ndarray]:
    """Table-shaped leads whose conversion depends on plan and seats."""
    rng = np.random.default_rng(seed)
    leads = pd.DataFrame({"lead_id": [f"L{i}" for i in range(n)],
                          "plan": rng.choice(["free", "pro", "team"], n),
                          "seats": rng.integers(1, 50, n).astype(float)})
    logit = -1.0 + 1.5 * (leads["plan"] == "pro") + leads["seats"] / 25
    return leads, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()


def fitted(model: ModelConfig) -> Pipeline:
    leads, converted = plan_leads(seed=1)
    x = model_frame(leads, COLUMNS)
    return fit_pipeline(build_pipeline(model, COLUMNS), model, (x[:400], converted[:400]),
                        (x[400:], converted[400:]))


# ------------------------------------------------------------------ the catalog
def test_every_registered_kind_has_its_config_and_builds_the_pipeline_it_owns() -> None:
    on_disk = {path.stem for path in (REPO / "configs/models").glob("*.yaml")}
    assert set(kinds.names()) == on_disk
    assert kinds.DEFAULT in kinds.names()
    for name in kinds.names():
        model = load_config(REPO / f"configs/models/{name}.yaml", ModelConfig)
        kind = kinds.get(name)
        assert isinstance(kind, ModelKind) and kind.name == name == model.kind
        pipeline = fitted(model.model_copy(update={"params": {
            k: v for k, v in model.params.items() if k != "n_estimators"}}))
        assert kinds.of(pipeline) is kind
        assert [owner.name for owner in map(kinds.get, kinds.names())
                if owner.owns(pipeline)] == [name]  # exactly one kind claims it


def test_unknown_kinds_are_refused_with_the_registered_names(tmp_path: Path) -> None:
    assert "lightgbm, logreg" in message_of(ValueError, kinds.get, "xgboost")
    bad = tmp_path / "model.yaml"
    bad.write_text("kind: xgboost\nparams: {}\n")
    message = message_of(ConfigError, load_config, bad, ModelConfig)
    assert "kind" in message and "'xgboost' is not a model kind" in message
    assert "lightgbm, logreg" in message
    foreign = Pipeline([("classifier", SGDClassifier())])
    assert "SGDClassifier" in message_of(TypeError, kinds.of, foreign)


def test_only_the_kinds_that_train_on_dask_are_offered_for_it() -> None:
    assert kinds.on_dask() == ("lightgbm",)
    assert "does not train logreg" in message_of(
        ValueError, kinds.get("logreg").fit_on_dask, None, None, None, None, None)
    logreg = load_config(REPO / "configs/models/logreg.yaml", ModelConfig)
    message = message_of(ValueError, dask_training.check_trains_on_dask, logreg)
    assert "trains lightgbm models, not logreg" in message and "--model lightgbm" in message


def test_the_command_line_offers_the_kinds_without_loading_a_model_library() -> None:
    probe = ("import json, sys\n"
             "from predictive_scoring.cli import app\n"
             "from predictive_scoring.cli.common import ModelName\n"
             "heavy = [m for m in ('lightgbm', 'sklearn', 'pandas') if m in sys.modules]\n"
             "print(json.dumps({'choices': [m.value for m in ModelName], 'heavy': heavy}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, cwd=REPO)
    seen = json.loads(done.stdout)
    assert seen == {"choices": list(kinds.names()), "heavy": []}


# ------------------------------------------------------------------ a kind added
class SGDKind(LogisticRegressionKind):
    """A linear model by stochastic gradient descent: registered only in these tests."""

    name = "sgd"

    def build(self, model: ModelConfig, columns: FeatureColumns) -> Pipeline:
        pipeline = super().build(model.model_copy(update={"params": {}}), columns)
        pipeline.steps[-1] = ("classifier", SGDClassifier(**model.params))
        return pipeline

    def owns(self, pipeline: Pipeline) -> bool:
        return isinstance(pipeline[-1], SGDClassifier)


@pytest.fixture
def sgd_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelConfig]:
    kinds.get.cache_clear()
    monkeypatch.setitem(kinds.KINDS, "sgd", f"{__name__}:SGDKind")
    yield ModelConfig(kind="sgd", params={"loss": "log_loss", "random_state": 0})
    kinds.get.cache_clear()


def test_a_new_kind_trains_explains_and_scores_without_touching_its_callers(
        sgd_registered: ModelConfig) -> None:
    pipeline = fitted(sgd_registered)
    leads, converted = plan_leads(seed=2, n=300)
    x = model_frame(leads, COLUMNS)
    calibrator, _ = choose_calibrator(pipeline.predict_proba(x)[:, 1], converted, seed=0)
    scorer = LeadScorer("plans", "table", COLUMNS, None, pipeline, calibrator,
                        {Stage.LEAD: 0.0, Stage.MQL: 0.4}, CLASSIC_RULES.model_copy(
                            update={"event_rules": [], "attribute_rules": []}))
    assert scorer.kind.name == "sgd"
    scorer.metadata[explain.METADATA_KEY] = explain.explanation_metadata(scorer, x)
    contrib = explain.contributions(scorer, x)
    raw = pipeline[-1].decision_function(explain.model_matrix(scorer, x))
    np.testing.assert_allclose(contrib.base + contrib.values.sum(axis=1), raw, atol=1e-9)
    online = OnlineScorer(scorer)
    assert not online.fast  # no row predictor: its rows go through the pipeline
    raws = [RawLead(row.lead_id, {"plan": row.plan, "seats": row.seats})
            for row in leads.head(20).itertuples()]
    np.testing.assert_array_equal(online.score(raws).probability,
                                  scorer.score(leads.head(20))["probability"].to_numpy())
    message = message_of(ValueError, dask_training.check_trains_on_dask, sgd_registered)
    assert "not sgd" in message
