"""online.OnlineScorer: the pandas-free path gives what LeadScorer.score gives, for every
model kind and both data shapes, and refuses unreadable leads naming the field."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from predictive_scoring import explain
from predictive_scoring.config import AttributeRule, ModelConfig, RulesConfig
from predictive_scoring.features import to_ns
from predictive_scoring.models import scorer as models
from predictive_scoring.models.columns import FeatureColumns, model_frame
from predictive_scoring.models.scorer import LeadScorer, fit_calibrator
from predictive_scoring.online import LeadInputError, OnlineScorer, RawLead
from predictive_scoring.stages import Stage
from tests.helpers import message_of
from tests.serving.conftest import Trained

LOGREG = ModelConfig(kind="logreg", params={"max_iter": 300})
TABLE_LGBM = ModelConfig(kind="lightgbm", params={"n_estimators": 40, "num_leaves": 7,
                                                  "min_child_samples": 10, "n_jobs": 1,
                                                  "verbose": -1})
PLAN_RULES = RulesConfig(
    name="plan_points", stage_thresholds={Stage.LEAD: 0, Stage.MQL: 10},
    attribute_rules=[AttributeRule(name="pro_plan", field="plan", op="eq", value="pro",
                                   points=10),
                     AttributeRule(name="big_team", field="seats", op="gte", value=20,
                                   points=5)])


def raw_leads(leads: pd.DataFrame, events: pd.DataFrame, attributes: list[str]
              ) -> list[RawLead]:
    """The frames' leads as the API hands them over."""
    raws = []
    for lead in leads.itertuples(index=False):
        own = events.loc[events["lead_id"] == lead.lead_id]
        raws.append(RawLead(
            lead.lead_id, {a: (None if pd.isna(getattr(lead, a)) else getattr(lead, a))
                           for a in attributes},
            int(to_ns(pd.Series([lead.created_at]))[0]), int(to_ns(pd.Series([lead.as_of]))[0]),
            to_ns(own["timestamp"]).tolist(), own["event_type"].tolist(),
            [None if pd.isna(d) else d for d in own["detail"]]))
    return raws


@pytest.fixture(scope="module")
def sample(trained: Trained) -> tuple[pd.DataFrame, pd.DataFrame, list[RawLead]]:
    leads = trained.leads.head(150)
    events = trained.dataset.events
    events = events.loc[events["lead_id"].isin(leads["lead_id"])]
    attributes = [c for c in leads.columns if c not in ("lead_id", "created_at", "as_of")]
    return leads, events, raw_leads(leads, events, attributes)


def _assert_same(online: OnlineScorer, scorer: LeadScorer, leads: pd.DataFrame,
                 events: pd.DataFrame | None, raws: list[RawLead]) -> None:
    expected = scorer.score(leads, events)
    got = online.score(raws)
    np.testing.assert_array_equal(got.probability, expected["probability"].to_numpy())
    np.testing.assert_array_equal(got.score, expected["score"].to_numpy())
    assert got.suggested_stage.tolist() == expected["suggested_stage"].tolist()
    np.testing.assert_array_equal(got.points.points, expected["rule_points"].to_numpy())
    assert got.points.stage.tolist() == expected["rule_stage"].tolist()


def test_lightgbm_fast_path_equals_the_dataframe_path(trained: Trained, sample: tuple) -> None:
    leads, events, raws = sample
    online = OnlineScorer(trained.scorer)
    assert online.fast
    _assert_same(online, trained.scorer, leads, events, raws)
    silent = dataclasses.replace(raws[7], lead_id="no-events", event_times=[],
                                 event_types=[], event_details=[])
    leads_in = [*raws, silent]
    batch = online.score(leads_in)
    for i in (0, 7, 149, 150):  # one lead: its own events path and the single-row predictor
        one = online.score(leads_in[i:i + 1])
        np.testing.assert_array_equal(one.matrix[0], batch.matrix[i])
        assert one.model_output[0] == batch.model_output[i]
        assert one.probability[0] == batch.probability[i]
        np.testing.assert_array_equal(one.points.per_rule[0], batch.points.per_rule[i])
        assert one.points.stage[0] == batch.points.stage[i]
    assert batch.points.per_rule[150].tolist() != batch.points.per_rule[7].tolist()


def test_the_single_row_path_refuses_a_row_of_the_wrong_shape(trained: Trained) -> None:
    predictor = OnlineScorer(trained.scorer).predictor  # LightGBM's booster rows
    width = len(trained.scorer.columns.all)
    row = np.zeros((1, width))
    assert predictor.single_row.predict(row)[0] == predictor.booster.predict(row)[0]
    assert "one float64 row" in message_of(ValueError, predictor.single_row.predict,
                                           np.zeros((2, width)))
    assert "one float64 row" in message_of(ValueError, predictor.single_row.predict,
                                           np.zeros((1, width + 1)))


def test_logistic_regression_goes_through_its_pipeline_with_the_same_result(
        trained: Trained, sample: tuple) -> None:
    examples, rows = trained.run.examples, trained.run.trained.rows
    x = model_frame(examples.frame, examples.columns)
    pipeline = models.fit_pipeline(models.build_pipeline(LOGREG, examples.columns), LOGREG,
                                   (x.iloc[rows["train"]], examples.label[rows["train"]]),
                                   (x.iloc[rows["valid"]], examples.label[rows["valid"]]))
    scorer = dataclasses.replace(trained.scorer, pipeline=pipeline)
    online = OnlineScorer(scorer)
    assert not online.fast
    leads, events, raws = sample
    _assert_same(online, scorer, leads, events, raws)


def test_table_shape_without_events(sample: tuple) -> None:
    rng = np.random.default_rng(1)
    n = 400
    leads = pd.DataFrame({"lead_id": [f"T{i}" for i in range(n)],
                          "plan": rng.choice(["free", "pro", "team", None], n),
                          "seats": rng.integers(1, 50, n).astype(float)})
    leads.loc[::7, "seats"] = np.nan
    converted = (rng.random(n) < np.where(leads["plan"] == "pro", 0.6, 0.2)).astype(int)
    columns = FeatureColumns(("plan",), ("seats",), {"plan": "fit", "seats": "fit"})
    x = model_frame(leads, columns)
    pipeline = models.fit_pipeline(models.build_pipeline(TABLE_LGBM, columns), TABLE_LGBM,
                                   (x[:300], converted[:300]), (x[300:], converted[300:]))
    calibrator = fit_calibrator("isotonic", pipeline.predict_proba(x[300:])[:, 1],
                                converted[300:])
    scorer = LeadScorer("plans", "table", columns, None, pipeline, calibrator,
                        {Stage.LEAD: 0.0, Stage.MQL: 0.4}, PLAN_RULES)
    raws = [RawLead(row.lead_id, {"plan": row.plan, "seats": row.seats, "crm_owner": "x"})
            for row in leads.itertuples()]
    online = OnlineScorer(scorer)
    _assert_same(online, scorer, leads, None, raws)
    assert online.score(raws[:1]).ignored_fields == [["crm_owner"]]
    as_text = [dataclasses.replace(r, attributes={"plan": r.attributes["plan"],
                                                  "seats": _text(r.attributes["seats"])})
               for r in raws[:50]]
    np.testing.assert_array_equal(online.score(as_text).probability,
                                  online.score(raws[:50]).probability)


def _text(number: float) -> str:
    return "" if np.isnan(number) else str(number)


@pytest.mark.parametrize(("attributes", "field", "reason"), [
    ({"employees": "lots"}, "employees", "is not a finite number in decimal notation: 'lots'"),
    ({"employees": True}, "employees", "is not a number: True"),
    ({"employees": "nan"}, "employees", "is not a finite number in decimal notation: 'nan'"),
    ({"employees": "Infinity"}, "employees",
     "is not a finite number in decimal notation: 'Infinity'"),
    ({"employees": float("inf")}, "employees", "is not a finite number: inf"),
    ({"employees": -3}, "employees", "is -3; it must be >= 0"),
    ({"industry": 2**64}, "industry",
     "is the number 18446744073709551616, beyond 64 bits; send a category as text"),
    ({"industry": ["software"]}, "industry", "must be a single value, not a list"),
])
def test_unreadable_attributes_name_the_field(trained: Trained, sample: tuple,
                                              attributes: dict, field: str,
                                              reason: str) -> None:
    lead = sample[2][0]
    online = OnlineScorer(trained.scorer)
    with pytest.raises(LeadInputError) as caught:
        online.score([dataclasses.replace(lead, attributes=lead.attributes | attributes)])
    assert (caught.value.field, caught.value.reason) == (field, reason)


def test_numbers_sent_as_text_and_blank_values_are_read(trained: Trained,
                                                        sample: tuple) -> None:
    lead = sample[2][0]
    online = OnlineScorer(trained.scorer)
    employees = lead.attributes["employees"]
    as_text = dataclasses.replace(lead, attributes=lead.attributes | {
        "employees": f" {employees} "})
    blank = dataclasses.replace(lead, attributes=lead.attributes | {"employees": "",
                                                                     "industry": "  "})
    missing = dataclasses.replace(lead, attributes={
        k: v for k, v in lead.attributes.items() if k not in ("employees", "industry")})
    probability = online.score([lead, as_text, blank, missing]).probability
    assert probability[0] == probability[1]
    assert probability[2] == probability[3]


def test_event_models_need_both_times_in_order(trained: Trained, sample: tuple) -> None:
    lead = sample[2][0]
    online = OnlineScorer(trained.scorer)
    for name in ("created_at", "as_of"):
        with pytest.raises(LeadInputError, match="is required") as caught:
            online.check(dataclasses.replace(lead, **{name: None}))
        assert caught.value.field == name
    with pytest.raises(LeadInputError, match="is after as_of"):
        online.check(dataclasses.replace(lead, created_at=lead.as_of + 1))


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_the_calibrator_gives_exactly_what_sklearn_gives(method: str) -> None:
    rng = np.random.default_rng(3)
    raw = rng.random(2000)
    calibrator = fit_calibrator(method, raw, (rng.random(2000) < raw).astype(int))
    probe = np.concatenate([rng.random(500), [0.0, 1.0, 1e-9, 1 - 1e-9]])
    if method == "isotonic":
        expected = np.clip(calibrator.fitted.predict(probe), models.ISOTONIC_FLOOR,
                           1 - models.ISOTONIC_FLOOR)
    else:
        expected = calibrator.fitted.predict_proba(models._logit(probe)[:, None])[:, 1]
    np.testing.assert_array_equal(calibrator(probe), expected)


@pytest.mark.parametrize("kind", ["lightgbm", "logreg"])
def test_a_finite_number_beyond_float32_scores_as_its_largest_on_both_paths(
        trained: Trained, sample: tuple, kind: str) -> None:
    """The model reads float32: 1e300 employees is the largest float32, not infinity (an
    infinite input gave a logistic model infinite contributions)."""
    scorer = trained.scorer
    if kind == "logreg":
        examples, rows = trained.run.examples, trained.run.trained.rows
        x = model_frame(examples.frame, examples.columns)
        scorer = dataclasses.replace(scorer, pipeline=models.fit_pipeline(
            models.build_pipeline(LOGREG, examples.columns), LOGREG,
            (x.iloc[rows["train"]], examples.label[rows["train"]]),
            (x.iloc[rows["valid"]], examples.label[rows["valid"]])))
    leads, events, raws = sample
    leads, raws = leads.head(3).copy(), raws[:3]
    leads["employees"] = 1e300
    raws = [dataclasses.replace(raw, attributes={**raw.attributes, "employees": 1e300})
            for raw in raws]
    largest = leads.assign(employees=float(np.finfo(np.float32).max))
    _assert_same(OnlineScorer(scorer), scorer, leads, events, raws)
    np.testing.assert_array_equal(scorer.score(leads, events)["probability"],
                                  scorer.score(largest, events)["probability"])
    online = OnlineScorer(scorer).score(raws)
    assert not np.isinf(online.matrix).any()
    if kind == "lightgbm":
        explained = explain.contributions_from_matrix(scorer, online.matrix)
    else:  # what a logistic model's contributions multiply by its coefficients
        frame = model_frame(pd.DataFrame(dict(online.features)), scorer.columns)
        explained = np.asarray(scorer.pipeline[:-1].transform(frame), dtype=float)
    assert np.isfinite(np.asarray(getattr(explained, "values", explained))).all()
