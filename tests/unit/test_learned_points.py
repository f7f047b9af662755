"""Learned points: candidates scored by the rules engine, the distillation, the scale, the
stage thresholds, the YAML round trip, and (on simulated data) beating the hand-set table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predictive_scoring.config import (
    AttributeRule,
    EventRule,
    RulesConfig,
    load_config,
)
from predictive_scoring.data.dataset import load_events_dataset
from predictive_scoring.data.synthetic import simulate_into
from predictive_scoring.learned_points import (
    LearnSettings,
    comparison,
    distil,
    informative_columns,
    learn_points,
    points_stage_thresholds,
    stage_shares,
    to_points,
    write_rules,
)
from predictive_scoring.rules import score_points
from predictive_scoring.stages import Stage, stage_for_values
from predictive_scoring.train import TrainingPlan, examples_from_events, train_model
from tests.conftest import BASE, LIGHTGBM, SIMULATED
from tests.conftest import CLASSIC_RULES as RULES


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A LightGBM model on 6,000 simulated leads and its learned points table."""
    root = tmp_path_factory.mktemp("sim")
    config = simulate_into(SIMULATED, 6_000, 21, root)
    dataset = load_events_dataset(config, Path("."))
    examples, rows, _ = examples_from_events(dataset, config, RULES, BASE.training)
    trained = train_model(examples, rows, TrainingPlan(config, LIGHTGBM, RULES, BASE))
    table = learn_points(trained.scorer, examples.frame, dataset.events, rows["train"])
    return {"examples": examples, "rows": rows, "scorer": trained.scorer, "table": table,
            "events": dataset.events, "root": root}


def test_learned_points_clearly_beat_the_hand_set_points_on_test_rows(learned: dict) -> None:
    examples, test = learned["examples"], learned["rows"]["test"]
    table = comparison(learned["scorer"], learned["table"], examples.frame.iloc[test],
                       learned["events"], examples.label[test], examples.rule_points[test],
                       volume := len(test) // 5)
    assert volume > 0
    auc = table["roc_auc"]
    assert auc["learned points"] > auc["hand-set points"] + 0.02
    assert auc["learned points"] > auc["model"] - 0.05  # a faithful copy of the model
    assert table.loc["learned points", "gain_at_10"] > table.loc["hand-set points", "gain_at_10"]


def test_the_table_is_whole_points_in_the_rules_format(learned: dict, tmp_path: Path) -> None:
    rules = learned["table"].rules
    assert rules.event_rules and rules.attribute_rules
    for rule in [*rules.event_rules, *rules.attribute_rules]:
        assert rule.points == int(rule.points) != 0
    for rule in rules.event_rules:  # the cap still counts a whole number of events
        assert rule.cap / abs(rule.points) == int(rule.cap / abs(rule.points))
    path = write_rules(rules, tmp_path / "rules" / "learned.yaml", "learned in a test")
    assert path.read_text().startswith("# learned in a test\nname: learned_points\n")
    assert load_config(path, RulesConfig) == rules
    frame = learned["examples"].frame.iloc[learned["rows"]["test"]]
    reloaded = score_points(load_config(path, RulesConfig), frame, learned["events"])
    np.testing.assert_array_equal(reloaded.points,
                                  score_points(rules, frame, learned["events"]).points)


def test_stage_shares_match_the_model_on_training_rows(learned: dict) -> None:
    scorer, rows, examples = learned["scorer"], learned["rows"], learned["examples"]
    train = examples.frame.iloc[rows["train"]]
    model_stages = stage_for_values(
        scorer.probability(scorer.features(train, scorer.encode(train, learned["events"]))),
        scorer.stage_thresholds)
    points = score_points(learned["table"].rules, train, learned["events"]).points
    learned_stages = stage_for_values(points, learned["table"].rules.stage_thresholds)
    model_shares = stage_shares(model_stages, scorer.stage_thresholds)
    learned_shares = stage_shares(learned_stages, scorer.stage_thresholds)
    assert list(learned["table"].rules.stage_thresholds) == list(model_shares)
    for stage, share in model_shares.items():
        assert learned_shares[stage] == pytest.approx(share, abs=0.03), stage


def test_the_implied_probability_follows_the_scale(learned: dict) -> None:
    table = learned["table"]
    base = table.probability(np.array([0.0]))[0]
    doubled = table.probability(np.array([table.points_per_doubling]))[0]
    assert doubled / (1 - doubled) == pytest.approx(2 * base / (1 - base))


# ------------------------------------------------------------------ the pieces, by hand
def test_distil_recovers_a_known_linear_law_and_drops_noise_columns() -> None:
    rng = np.random.default_rng(0)
    flags = rng.integers(0, 2, size=(4_000, 4)).astype(float)
    counts = np.minimum(rng.poisson(2, size=(4_000, 1)), 3).astype(float)
    matrix = np.hstack([flags, counts])
    target = 1.5 * flags[:, 0] - 0.8 * flags[:, 1] + 0.4 * counts[:, 0] \
        + rng.normal(0, 0.05, 4_000)
    coefficients = distil(matrix, target, LearnSettings())
    np.testing.assert_allclose(coefficients[[0, 1, 4]], [1.5, -0.8, 0.4], atol=0.05)
    assert np.abs(coefficients[[2, 3]]).max() < 0.02


def test_to_points_scales_rounds_and_drops_zero_rules() -> None:
    candidates = [EventRule(name="demo", event_type="demo_request", points=1, cap=3),
                  AttributeRule(name="vp", field="seniority", op="eq", value="vp", points=1),
                  AttributeRule(name="tiny", field="employees", op="lt", value=5, points=1)]
    events, attributes = to_points(candidates, np.array([math.log(2), -0.5 * math.log(2),
                                                         0.01]), 10.0)
    assert [(r.name, r.points, r.cap) for r in events] == [("demo", 10, 30)]
    assert [(r.name, r.points) for r in attributes] == [("vp", -5)]


def test_informative_columns_skip_rare_constant_and_repeated_columns() -> None:
    rare = np.r_[1.0, np.zeros(999)]
    common = np.r_[np.ones(300), np.zeros(700)]
    matrix = np.column_stack([rare, common, np.ones(1_000), common, 2 * common])
    np.testing.assert_array_equal(informative_columns(matrix, 0.005), [1, 4])


def test_points_thresholds_give_each_stage_its_share_even_with_an_empty_stage() -> None:
    points = np.repeat(np.arange(10), 10).astype(float)  # 100 rows, 10 per point value
    shares = {Stage.SUBSCRIBER: 0.3, Stage.LEAD: 0.4, Stage.MQL: 0.0, Stage.SQL: 0.3}
    thresholds = points_stage_thresholds(points, shares)
    bars = list(thresholds.values())
    assert bars == sorted(bars) and len(set(bars)) == 4
    held = [thresholds[s] for s in (Stage.LEAD, Stage.SQL)]
    assert held == [3.0, 7.0]  # stages holding leads start at a total some lead has
    assert 3.0 < thresholds[Stage.MQL] < 7.0 and not thresholds[Stage.MQL].is_integer()
    got = stage_shares(stage_for_values(points, thresholds), thresholds)
    assert got == pytest.approx({Stage.SUBSCRIBER: 0.3, Stage.LEAD: 0.4, Stage.MQL: 0.0,
                                 Stage.SQL: 0.3})


def test_candidates_on_a_table_cover_values_bins_and_missing(learned: dict) -> None:
    from predictive_scoring.learned_points import candidate_rules

    frame = pd.DataFrame({"industry": ["software"] * 50 + ["retail"] * 49 + [None],
                          "employees": np.r_[np.arange(90), [np.nan] * 10]})
    scorer = learned["scorer"]
    columns = type(scorer.columns)(("industry",), ("employees",))
    table_scorer = type(scorer)("t", "table", columns, None, scorer.pipeline,
                                scorer.calibrator, scorer.stage_thresholds, scorer.rules)
    rules = candidate_rules(table_scorer, frame, LearnSettings(numeric_bins=4))
    described = {(r.field, r.op, r.value) for r in rules}
    assert {("industry", "eq", "software"), ("industry", "eq", "retail"),
            ("employees", "is_null", None)} <= described
    cuts = sorted(r.value for r in rules if r.op == "gte")
    assert len(cuts) == 3 and all(0 < cut < 90 for cut in cuts)
    assert ("industry", "is_null", None) in described  # 1 of 100 is above min_share
