"""Report pieces that need no browser: conversion per quadrant / grade / level, the
quadrant cut points, the model's reasons for the example leads, the driver figures."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from predictive_scoring import explain
from predictive_scoring.data.dataset import load_events_dataset
from predictive_scoring.data.synthetic import simulate_into
from predictive_scoring.models.columns import model_frame
from predictive_scoring.reporting.report import (
    driver_figures,
    lead_reasons,
    quadrant_cuts,
    segment_conversion,
)
from predictive_scoring.train import TrainingPlan, examples_from_events, train_model
from tests.conftest import BASE, LIGHTGBM, SIMULATED
from tests.conftest import CLASSIC_RULES as RULES


def _explained(quadrant: list[str | None], grade: list[str], level: list[str]) -> pd.DataFrame:
    n = len(grade)
    return pd.DataFrame({"fit_logodds": np.zeros(n), "engagement_logodds": np.zeros(n),
                         "fit_grade": pd.array(grade, dtype="string"),
                         "engagement": pd.array(level, dtype="string"),
                         "quadrant": pd.array(quadrant, dtype="string")})


def test_segment_conversion_counts_leads_and_converters_best_segment_first() -> None:
    explained = _explained(["sales-ready", "low priority", "sales-ready", "nurture", "check fit"],
                           ["A", "D", "B", "A", "C"], ["hot", "cold", "warm", "cool", "hot"])
    y = np.array([1, 0, 0, 1, 0])
    tables = segment_conversion(y, explained)
    assert list(tables) == ["quadrant", "fit grade", "engagement"]
    quadrant = tables["quadrant"]
    assert list(quadrant.index) == ["sales-ready", "nurture", "check fit", "low priority"]
    assert quadrant["leads"].tolist() == [2, 1, 1, 1]
    assert quadrant["conversion_rate"].tolist() == [0.5, 1.0, 0.0, 0.0]
    assert quadrant["share_of_positives"].tolist() == [0.5, 0.5, 0.0, 0.0]
    grade = tables["fit grade"]
    assert list(grade.index) == ["A", "B", "C", "D"] and grade.loc["A", "leads"] == 2
    assert list(tables["engagement"].index) == ["hot", "warm", "cool", "cold"]
    assert tables["engagement"].loc["hot", "conversion_rate"] == 0.5


def test_segments_the_model_cannot_tell_are_left_out() -> None:
    # A model without engagement fields: no level, no quadrant, grades still shown.
    explained = _explained([None, None], ["A", "D"], [None, None])
    assert list(segment_conversion(np.array([1, 0]), explained)) == ["fit grade"]


def test_quadrant_cuts_are_the_stored_medians_or_none_without_a_group() -> None:
    cuts = {"fit": [-1.0, 0.25, 1.0], "engagement": [-0.5, -0.1, 0.3]}
    scorer = SimpleNamespace(metadata={explain.METADATA_KEY: {"cuts": cuts}})
    assert quadrant_cuts(scorer) == (0.25, -0.1)
    one_group = SimpleNamespace(metadata={explain.METADATA_KEY: {"cuts": cuts | {
        "engagement": None}}})
    assert quadrant_cuts(one_group) is None
    assert quadrant_cuts(SimpleNamespace(metadata={})) is None


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A LightGBM model on 2,000 simulated leads and its test leads' model input."""
    root = tmp_path_factory.mktemp("report")
    config = simulate_into(SIMULATED, 2_000, 5, root)
    examples, rows, _ = examples_from_events(load_events_dataset(config, Path(".")), config,
                                             RULES, BASE.training)
    scorer = train_model(examples, rows, TrainingPlan(config, LIGHTGBM, RULES, BASE)).scorer
    test = rows["test"]
    return {"scorer": scorer, "features": model_frame(examples.frame.iloc[test],
                                                      examples.columns),
            "y": examples.label[test]}


def test_lead_reasons_give_each_lead_its_quadrant_and_strongest_reasons(small_model: dict
                                                                        ) -> None:
    scorer, features = small_model["scorer"], small_model["features"].iloc[:8]
    shown = lead_reasons(scorer, features, 2)
    assert len(shown) == 8 and list(shown.columns) == ["quadrant", "reasons_up",
                                                       "reasons_down"]
    contrib = explain.contributions(scorer, features)
    assert shown["quadrant"].tolist() == explain.fit_engagement(
        scorer, contrib)["quadrant"].tolist()
    for lead, row in zip(explain.reasons(scorer, features, contrib, 2),
                         shown.itertuples(), strict=True):
        ups = [r.sentence for r in lead if r.effect > 0]
        downs = [r.sentence for r in lead if r.effect < 0]
        assert row.reasons_up == "; ".join(ups) and row.reasons_down == "; ".join(downs)
        assert len(ups) <= 2 and len(downs) <= 2
    assert shown["reasons_up"].str.len().gt(0).any() and shown["reasons_down"].str.len().gt(0).any()


def test_driver_figures_draw_the_quadrant_only_when_the_model_has_both_groups(
        small_model: dict) -> None:
    scorer, features, y = small_model["scorer"], small_model["features"], small_model["y"]
    weights = explain.global_weights(scorer, features)
    explained = explain.fit_engagement(scorer, weights.contributions)
    data = SimpleNamespace(weights=weights, explained=explained, y=y,
                           quadrant_cuts=quadrant_cuts(scorer))
    drawn = driver_figures(data)
    assert list(drawn) == ["importance", "beeswarm", "quadrant"]
    lines = drawn["quadrant"].axes[0].lines
    assert sorted(line.get_xdata()[0] if line.get_xdata()[0] == line.get_xdata()[1]
                  else line.get_ydata()[0] for line in lines) == sorted(data.quadrant_cuts)
    assert list(driver_figures(SimpleNamespace(**{**vars(data), "quadrant_cuts": None}))) == [
        "importance", "beeswarm"]
