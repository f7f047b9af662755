"""Explanations on small trained models: exact contributions (the SHAP-sum check), agreement
with shap's TreeExplainer, reasons in score points, sentences, fit vs engagement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predictive_scoring import explain
from predictive_scoring.config import (
    ConfigError,
    DatasetConfig,
    ModelConfig,
    load_config,
)
from predictive_scoring.data.dataset import load_events_dataset
from predictive_scoring.data.synthetic import simulate_into
from predictive_scoring.models.columns import model_frame
from predictive_scoring.models.scorer import LeadScorer
from predictive_scoring.train import Examples, TrainingPlan, examples_from_events, train_model
from tests.conftest import BASE, REPO, SIMULATED
from tests.conftest import CLASSIC_RULES as RULES
from tests.helpers import message_of

KINDS = ["lightgbm", "logreg"]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Examples, DatasetConfig,
                                                                 dict[str, np.ndarray]]:
    root = tmp_path_factory.mktemp("explain")
    config = simulate_into(SIMULATED, 3_000, 11, root)
    examples, rows, _ = examples_from_events(load_events_dataset(config, Path(".")), config,
                                             RULES, BASE.training)
    return examples, config, rows


@pytest.fixture(scope="module")
def scorers(simulated: tuple) -> dict[str, LeadScorer]:
    examples, config, rows = simulated
    return {kind: train_model(examples, rows, TrainingPlan(
        config, load_config(REPO / f"configs/models/{kind}.yaml", ModelConfig), RULES,
        BASE)).scorer for kind in KINDS}


@pytest.fixture(scope="module")
def test_features(simulated: tuple) -> pd.DataFrame:
    examples, _, rows = simulated
    return model_frame(examples.frame.iloc[rows["test"]], examples.columns)


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


@pytest.mark.parametrize("kind", KINDS)
def test_base_plus_contributions_is_the_raw_output_for_every_lead(
        scorers: dict, test_features: pd.DataFrame, kind: str) -> None:
    scorer = scorers[kind]
    contrib = explain.contributions(scorer, test_features)
    assert contrib.fields == tuple(scorer.columns.all)
    assert contrib.values.shape == (len(test_features), len(scorer.columns.all))
    np.testing.assert_allclose(contrib.base + contrib.values.sum(axis=1), contrib.raw_output,
                               rtol=0, atol=1e-9)
    raw = _logit(scorer.pipeline.predict_proba(test_features)[:, 1])
    np.testing.assert_allclose(contrib.raw_output, raw, rtol=0, atol=1e-7)
    assert np.ptp(contrib.base) == 0  # one expected value for the whole model
    assert (np.abs(contrib.values).sum(axis=0) > 0).sum() > 5  # many fields matter


@pytest.mark.parametrize("kind", KINDS)
def test_the_matrix_fast_path_gives_the_same_values(scorers: dict, test_features: pd.DataFrame,
                                                    kind: str) -> None:
    scorer = scorers[kind]
    from_frame = explain.contributions(scorer, test_features.head(40))
    matrix = scorer.pipeline[:-1].transform(test_features.head(40)).astype(np.float64)
    one = explain.contributions_from_matrix(scorer, matrix[7])
    np.testing.assert_allclose(one.values[0], from_frame.values[7], atol=1e-12)
    assert "columns" in message_of(ValueError, explain.contributions_from_matrix, scorer,
                                   matrix[:, :-1])


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier with TreeExplainer")
def test_pred_contrib_agrees_with_shap_tree_explainer(scorers: dict,
                                                      test_features: pd.DataFrame) -> None:
    shap = pytest.importorskip("shap")
    scorer = scorers["lightgbm"]
    matrix = scorer.pipeline[:-1].transform(test_features.head(300)).astype(np.float64)
    explainer = shap.TreeExplainer(scorer.pipeline[-1].booster_,
                                   feature_perturbation="tree_path_dependent")
    theirs = explainer.shap_values(matrix)
    ours = explain.contributions_from_matrix(scorer, matrix)
    np.testing.assert_allclose(ours.values, np.asarray(theirs), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.base, float(np.ravel(explainer.expected_value)[0]),
                               atol=1e-9)


def test_linear_contributions_sum_one_hot_and_indicator_columns_back_to_their_field(
        scorers: dict, test_features: pd.DataFrame) -> None:
    scorer = scorers["logreg"]
    leads = test_features.head(50)
    changed = model_frame(leads.assign(industry=leads["industry"].iloc[::-1].to_numpy(),
                                       employees=np.nan), scorer.columns)  # float32, as leads
    before = explain.contributions(scorer, leads)
    after = explain.contributions(scorer, changed)
    moved = np.abs(after.values - before.values).max(axis=0) > 1e-12
    assert {f for f, m in zip(before.fields, moved, strict=True) if m} == {"industry",
                                                                          "employees"}
    np.testing.assert_allclose(after.raw_output - before.raw_output,
                               (after.values - before.values).sum(axis=1), atol=1e-9)


def test_effects_in_score_points_add_up_to_the_score_change(scorers: dict,
                                                            test_features: pd.DataFrame) -> None:
    for scorer in scorers.values():
        contrib = explain.contributions(scorer, test_features)
        base_score, effects = explain.score_effects(scorer, contrib)
        score = 100 * scorer.probability(test_features)
        np.testing.assert_allclose(base_score + effects.sum(axis=1), score, atol=1e-9)
        pushes = np.abs(contrib.values) > 1e-12
        same_sign = np.sign(effects[pushes]) == np.sign(contrib.values[pushes])
        assert (same_sign | (effects[pushes] == 0)).all()


@pytest.mark.parametrize("kind", KINDS)
def test_reasons_are_the_strongest_pushes_each_way(scorers: dict, test_features: pd.DataFrame,
                                                   kind: str) -> None:
    scorer = scorers[kind]
    leads = test_features.head(60)
    contrib = explain.contributions(scorer, leads)
    _, effects = explain.score_effects(scorer, contrib)
    found = explain.reasons(scorer, leads, contrib, k=3)
    assert len(found) == len(leads)
    for row, lead in enumerate(found):
        ups = [r.effect for r in lead if r.effect > 0]
        downs = [r.effect for r in lead if r.effect < 0]
        assert len(ups) + len(downs) == len(lead) and len(ups) <= 3 and len(downs) <= 3
        assert ups == sorted(ups, reverse=True) and downs == sorted(downs)
        floor = explain.MIN_REASON_POINTS  # smaller pushes would read "+0.0": no reason
        assert bool(ups) == (effects[row].max() >= floor)
        assert bool(downs) == (effects[row].min() <= -floor)
        assert all(abs(r.effect) >= floor for r in lead)
        if ups:
            assert ups[0] == pytest.approx(effects[row].max())
        if downs:
            assert downs[0] == pytest.approx(effects[row].min())
        for reason in lead:
            column = contrib.fields.index(reason.field)
            assert reason.effect == pytest.approx(effects[row, column])
            assert reason.sentence.endswith(explain._points(reason.effect))
            value = leads[reason.field].iloc[row]
            assert reason.value == (None if pd.isna(value) else value)


def test_sentences_come_from_the_feature_names(scorers: dict) -> None:
    scorer = scorers["lightgbm"]
    spec = scorer.feature_spec
    assert "pricing" in {d for t, d in spec.detail_keys if t == "page_view"}
    assert "email_open" in {t for t, _ in spec.detail_keys}  # opens of rare campaigns: "other"
    cases = {
        ("n_page_view.pricing_7d", 3.0): "3 pricing page visits in the last 7 days",
        ("n_page_view.pricing_7d", 1.0): "1 pricing page visit in the last 7 days",
        ("n_page_view.pricing_all", 0.0): "No pricing page visits yet",
        ("n_email_open_30d", 4.0): "4 other email opens in the last 30 days",  # campaigns
        ("days_since_page_view.pricing", 2.5): "Last pricing page visit 2 days ago",
        ("days_since_page_view.pricing", None): "No pricing page visit yet",
        ("n___other___90d", 2.0): "2 other activities in the last 90 days",
        ("n_page_view_30d", 2.0): "2 other page visits in the last 30 days",
        ("days_since_page_view", 3.0): "Last other page visit 3 days ago",
        ("tenure_days", 30.2): "Lead created 30 days ago",
        ("industry", "software"): "Industry is software",
        ("company_size", None): "Company size unknown",
        ("employees", 250.0): "Employees is 250",
    }
    for (field, value), sentence in cases.items():
        assert explain.describe(scorer, field, value) == sentence
    for column in spec.columns:  # every behaviour column reads as behaviour, none as "X is v"
        assert " is " not in explain.describe(scorer, column.name, 2.0)


def test_event_nouns() -> None:
    assert explain.event_nouns("page_view", "case_study") == ("case study page visit",
                                                             "case study page visits")
    assert explain.event_nouns("email_bounce", None) == ("email bounce", "email bounces")
    assert explain.event_nouns("webinar_registration", None)[1] == "webinar registrations"
    assert explain.event_nouns("email_click", "newsletter") == ("email click (newsletter)",
                                                               "email clicks (newsletter)")


def test_fit_and_engagement_split_the_log_odds_and_grade_by_training_quartiles(
        scorers: dict, simulated: tuple) -> None:
    examples, _, rows = simulated
    for scorer in scorers.values():
        train = model_frame(examples.frame.iloc[rows["train"]], examples.columns)
        contrib = explain.contributions(scorer, train)
        table = explain.fit_engagement(scorer, contrib)
        assert list(table.columns) == explain.EXPLANATION_COLUMNS
        np.testing.assert_allclose(table["fit_logodds"] + table["engagement_logodds"],
                                   contrib.values.sum(axis=1), atol=1e-9)
        fit_fields = [f for f, g in scorer.columns.groups.items() if g == "fit"]
        np.testing.assert_allclose(table["fit_logodds"], contrib.values[
            :, [contrib.fields.index(f) for f in fit_fields]].sum(axis=1), atol=1e-12)
        shares = table["fit_grade"].value_counts(normalize=True)
        assert set(shares.index) == set("ABCD") and shares.between(0.15, 0.35).all()
        assert table["engagement"].isin(explain.ENGAGEMENT_LEVELS).all()
        best = table["fit_grade"].isin(["A", "B"]) & table["engagement"].isin(["hot", "warm"])
        assert (table.loc[best, "quadrant"] == "sales-ready").all()
        worst = table["fit_grade"].isin(["C", "D"]) & table["engagement"].isin(["cold", "cool"])
        assert (table.loc[worst, "quadrant"] == "low priority").all()
        higher = table.sort_values("fit_logodds")["fit_grade"].to_numpy()
        assert list(higher) == sorted(higher, reverse=True)  # D..A as fit rises


def test_grades_need_the_train_time_cut_points(scorers: dict,
                                               test_features: pd.DataFrame) -> None:
    scorer = scorers["lightgbm"]
    bare = LeadScorer(**{**scorer.__dict__, "metadata": {}})
    contrib = explain.contributions(bare, test_features.head(5))  # trees need nothing
    assert "retrain" in message_of(ValueError, explain.fit_engagement, bare, contrib)
    linear = scorers["logreg"]
    bare_linear = LeadScorer(**{**linear.__dict__, "metadata": {}})
    assert "reference input" in message_of(ValueError, explain.contributions, bare_linear,
                                           test_features.head(5))


def test_global_importance_ranks_fields_and_groups(scorers: dict,
                                                   test_features: pd.DataFrame) -> None:
    scorer = scorers["lightgbm"]
    contrib = explain.contributions(scorer, test_features)
    table = explain.global_importance(contrib, scorer.columns.groups)
    assert list(table.columns) == ["feature", "group", "mean_abs"]
    assert table["mean_abs"].is_monotonic_decreasing
    top = table.iloc[0]
    assert top["mean_abs"] == pytest.approx(
        np.abs(contrib.values[:, contrib.fields.index(top["feature"])]).mean())
    groups = explain.group_importance(contrib, scorer.columns.groups)
    assert set(groups["group"]) == {"fit", "engagement"}
    assert groups["features"].sum() == len(contrib.fields)
    sums = explain.group_logodds(contrib, scorer.columns.groups)
    for row in groups.itertuples():
        assert row.mean_abs == pytest.approx(np.abs(sums[row.group]).mean())


def test_score_explained_adds_grades_and_reason_columns(scorers: dict, simulated: tuple) -> None:
    examples, config, rows = simulated
    scorer = scorers["lightgbm"]
    test = examples.frame.iloc[rows["test"][:40]]
    leads = test[["lead_id", "created_at", "as_of", *config.attributes.categorical,
                  *config.attributes.numeric]].reset_index(drop=True)
    events = load_events_dataset(config, Path(".")).events
    plain = scorer.score(leads, events)
    explained = explain.score_explained(scorer, leads, events, 2)
    pd.testing.assert_frame_equal(explained[list(plain.columns)], plain)
    assert list(explained.columns[len(plain.columns):]) == [
        *explain.EXPLANATION_COLUMNS, *explain.reason_columns(2)]
    assert explained["reason_up_1"].notna().any() and explained["reason_down_1"].notna().any()
    assert explained["reason_up_1"].dropna().str.contains(r": \+").all()
    assert explained["reason_down_1"].dropna().str.contains(r": -").all()


def test_engagement_attributes_are_declared_in_the_dataset_config(tmp_path: Path) -> None:
    bank = load_config(REPO / "configs/datasets/bank_marketing.yaml", DatasetConfig)
    assert "campaign" in bank.feature_groups.engagement
    raw = (REPO / "configs/datasets/bank_marketing.yaml").read_text()
    bad = tmp_path / "bank.yaml"
    bad.write_text(raw.replace("engagement: [campaign", "engagement: [calls"))
    message = message_of(ConfigError, load_config, bad, DatasetConfig)
    assert "feature_groups.engagement" in message and "calls" in message
