"""Training on small simulated and hand-made data: split, guards, leakage, quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predictive_scoring.config import (
    DatasetConfig,
    ModelConfig,
    load_config,
)
from predictive_scoring.data.dataset import load_events_dataset
from predictive_scoring.data.synthetic import simulate_into
from predictive_scoring.leakage import leakage_warnings
from predictive_scoring.models.columns import FeatureColumns
from predictive_scoring.train import (
    Examples,
    TrainingError,
    TrainingPlan,
    check_enough_data,
    examples_from_events,
    split_rows,
    train_model,
)
from tests.conftest import BASE, REPO, SIMULATED
from tests.conftest import CLASSIC_RULES as RULES


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Examples, DatasetConfig,
                                                                 dict[str, np.ndarray]]:
    root = tmp_path_factory.mktemp("sim")
    config = simulate_into(SIMULATED, 6_000, 11, root)
    examples, rows, _ = examples_from_events(load_events_dataset(config, Path(".")), config,
                                             RULES, BASE.training)
    return examples, config, rows


def test_time_split_keeps_leads_whole_and_tests_on_the_latest(simulated: tuple) -> None:
    examples, _, rows = simulated
    assert sum(len(r) for r in rows.values()) == len(examples.frame)
    train_leads = set(examples.frame["lead_id"].iloc[rows["train"]])
    events = load_events_dataset(simulated[1], Path(".")).events
    train_types = set(events.loc[events["lead_id"].isin(train_leads), "event_type"])
    assert set(examples.spec.event_types) <= train_types  # vocabulary from training only
    leads = {name: set(examples.frame["lead_id"].iloc[r]) for name, r in rows.items()}
    assert not leads["train"] & leads["test"] and not leads["valid"] & leads["test"]
    assert not leads["train"] & leads["valid"]
    created = examples.frame["created_at"]
    assert created.iloc[rows["train"]].max() <= created.iloc[rows["valid"]].min()
    assert created.iloc[rows["valid"]].max() <= created.iloc[rows["test"]].min()
    n_leads = examples.frame["lead_id"].nunique()
    assert len(leads["test"]) == round(n_leads * BASE.training.test_fraction)


def test_random_split_is_stratified_and_repeatable() -> None:
    label = np.r_[np.ones(100), np.zeros(900)].astype(np.int8)
    frame = pd.DataFrame({"lead_id": [str(i) for i in range(1000)]})
    first = split_rows(frame["lead_id"], None, label, BASE.training)
    second = split_rows(frame["lead_id"], None, label, BASE.training)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
        assert label[first[name]].mean() == pytest.approx(0.1, abs=0.01)
    assert len(first["test"]) == 200 and len(first["valid"]) == 200


@pytest.mark.parametrize(("positives", "negatives"), [(39, 500), (500, 39)])
def test_too_little_data_stops_and_points_at_the_rules(positives: int, negatives: int) -> None:
    label = np.r_[np.ones(positives), np.zeros(negatives)]
    with pytest.raises(TrainingError) as caught:
        check_enough_data(label, BASE.training)
    message = str(caught.value)
    assert f"{positives} converted and {negatives} not converted" in message
    assert "predictive-scoring rules" in message


def test_leakage_is_named() -> None:
    rng = np.random.default_rng(0)
    label = (rng.random(2000) < 0.2).astype(np.int8)
    frame = pd.DataFrame({
        "honest": rng.normal(size=2000) + label * 0.5,
        "deal_size": np.where(label == 1, rng.uniform(1, 9, 2000), 0.0),  # alone: AUC 1
        "segment": np.where(label == 1, "retail", None),  # filled for converted only
        "origin": rng.choice(["web", "ads"], 2000),
    })
    columns = FeatureColumns(("segment", "origin"), ("honest", "deal_size"),
                             {"segment": "fit", "origin": "fit", "honest": "fit",
                              "deal_size": "fit"})
    rows = {"train": np.arange(1200), "valid": np.arange(1200, 1600),
            "test": np.arange(1600, 2000)}
    warnings = leakage_warnings(frame, label, rows, columns, BASE.training.leakage_auc)
    assert any("'deal_size' alone gives a test ROC-AUC of 1.000" in w for w in warnings)
    assert any("'segment' is filled in only for converted" in w for w in warnings)
    assert not any("'honest'" in w or "'origin'" in w for w in warnings)


def _status_like(rng: np.random.Generator, label: np.ndarray) -> np.ndarray:
    """A CRM status column sales fills in after contact: most converters 'closed won',
    half the others 'disqualified', the rest 'open' (mixed)."""
    draw = rng.random(len(label))
    won = np.where(label == 1, draw < 0.55, draw < 0.005)
    lost = np.where(label == 1, (draw >= 0.55) & (draw < 0.56), draw > 0.5)
    return np.select([won, lost], ["closed won", "disqualified"], "open")


def test_near_pure_values_are_named_though_the_column_alone_scores_below_the_bar() -> None:
    rng = np.random.default_rng(3)
    label = (rng.random(4000) < 0.3).astype(np.int8)
    # days in the sales pipeline: 0 for three quarters of the leads that never converted
    days = np.where((label == 0) & (rng.random(4000) < 0.75), 0, rng.integers(1, 90, 4000))
    frame = pd.DataFrame({"status": _status_like(rng, label),
                          "pipeline_days": days.astype(float),
                          "industry": rng.choice(["software", "retail", "health"], 4000),
                          "employees": rng.lognormal(4, 1, 4000)})
    columns = FeatureColumns(("status", "industry"), ("pipeline_days", "employees"),
                             dict.fromkeys(frame.columns, "fit"))
    rows = {"train": np.arange(2400), "valid": np.arange(2400, 3200),
            "test": np.arange(3200, 4000)}
    warnings = leakage_warnings(frame, label, rows, columns, BASE.training.leakage_auc)
    status = [w for w in warnings if "'status'" in w]
    assert len(status) == 1 and "nearly settles the outcome" in status[0]
    assert "'closed won'" in status[0] and "'disqualified'" in status[0]
    days = [w for w in warnings if "'pipeline_days'" in w]
    assert len(days) == 1 and "nearly settles" in days[0] and "'= 0'" in days[0]
    assert not any("alone gives" in w for w in warnings)  # the AUC rule alone misses both
    assert not any("'industry'" in w or "'employees'" in w for w in warnings)


def test_the_near_pure_groups_name_each_rows_value_or_range() -> None:
    """The near-pure check groups rows by code, text only per group: every row's group
    holds its value (a shared value its own group, missing values one group, the rest in
    quantile ranges), values of the same text are one group, and the pure groups come
    largest first."""
    from predictive_scoring.leakage import _groups, near_pure_values

    rng = np.random.default_rng(5)
    numbers = np.where(rng.random(3000) < 0.4, 0.0, rng.exponential(5, 3000))
    numbers[rng.random(3000) < 0.05] = np.nan
    groups = _groups(pd.Series(numbers), categorical=False)
    names = np.asarray(groups.names, dtype=object)[groups.codes]
    assert (names[np.isnan(numbers)] == "(missing)").all()
    assert (names[numbers == 0] == "= 0").all()
    ranged = ~np.isnan(numbers) & (numbers != 0)
    bounds = np.array([[float(x) for x in name.split(" to ")] for name in names[ranged]])
    # each range holds its rows' values (the bounds as printed, 6 significant digits)
    assert (bounds[:, 0] <= numbers[ranged] * (1 + 1e-5)).all()
    assert (numbers[ranged] <= bounds[:, 1] * (1 + 1e-5)).all()
    assert len(set(groups.names)) == len(groups.names) <= 2 + 10
    mixed = _groups(pd.Series([1, "1", None, "a", 1], dtype=object), categorical=True)
    assert mixed.codes[0] == mixed.codes[1] == mixed.codes[4]  # 1 and "1" read alike
    assert mixed.names[mixed.codes[2]] == "(missing)" and len(mixed.names) == 3
    label = np.array([0] * 200 + [1] * 40 + [0] * 900 + [0] * 60 + [1, 0] * 250,
                     dtype=np.int8)
    tags = pd.Series(["spam"] * 200 + ["won"] * 40 + ["lost"] * 900 + ["won"] * 60
                     + ["mixed"] * 500)
    pure = near_pure_values(_groups(tags, categorical=True), label)
    assert pure.values == ["lost", "spam"] and list(pure.rows) == [900, 200]
    assert list(pure.rate) == [0.0, 0.0]


def test_no_leakage_warning_on_the_simulator(simulated: tuple) -> None:
    examples, _, rows = simulated
    assert leakage_warnings(examples.frame, examples.label, rows, examples.columns,
                            BASE.training.leakage_auc) == []


@pytest.mark.parametrize("kind", ["lightgbm", "logreg"])
def test_model_beats_the_points_and_stays_calibrated(simulated: tuple, kind: str) -> None:
    examples, config, rows = simulated
    model = load_config(REPO / f"configs/models/{kind}.yaml", ModelConfig)
    trained = train_model(examples, rows, TrainingPlan(config, model, RULES, BASE))
    metrics = trained.metrics
    assert metrics["model"]["roc_auc"] > metrics["rules"]["roc_auc"] + 0.03
    assert metrics["oracle"]["roc_auc"] > metrics["model"]["roc_auc"] - 0.08
    assert metrics["model"]["ece"] < 0.03
    assert metrics["model"]["captured_at_rules_volume"] >= metrics["rules"][
        "captured_at_rules_volume"]
    # (the stage thresholds hold the points' shares on the leads open at one moment:
    # tests/unit/test_ages.py)
    assert set(metrics["stages"]["model"]) == set(metrics["stages"]["rules"])


def test_scorer_scores_raw_leads_like_training(simulated: tuple) -> None:
    examples, config, rows = simulated
    model = load_config(REPO / "configs/models/lightgbm.yaml", ModelConfig)
    trained = train_model(examples, rows, TrainingPlan(config, model, RULES, BASE))
    test = examples.frame.iloc[rows["test"]]
    raw = test[["lead_id", "created_at", "as_of", *config.attributes.categorical,
                *config.attributes.numeric]]
    events = load_events_dataset(config, Path(".")).events
    scored = trained.scorer.score(raw, events)
    np.testing.assert_allclose(scored["probability"].to_numpy(), trained.test_probability)
    np.testing.assert_allclose(scored["rule_points"].to_numpy(),
                               examples.rule_points[rows["test"]])
    assert scored["score"].between(0, 100).all()
