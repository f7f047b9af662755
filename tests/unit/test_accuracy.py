"""The accuracy page: thresholds at a volume (ties kept together), confusion matrices that
add up to the leads, capacity as leads per week or a share, and the weekly backtest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from predictive_scoring.accuracy import (
    accuracy_page,
    at_volume,
    backtest,
    capacity_volume,
    confusion,
    threshold_at_volume,
    weeks_spanned,
)
from predictive_scoring.config import Capacity

T0 = pd.Timestamp("2025-01-01T00:00:00Z")


def test_threshold_hands_over_the_count_nearest_the_volume_keeping_ties_together() -> None:
    score = np.array([9, 8, 8, 8, 5, 5, 1, 0])
    assert threshold_at_volume(score, 2) == (9.0, 1)  # 1 and 4 are as near: the smaller
    assert threshold_at_volume(score, 3) == (8.0, 4)
    assert threshold_at_volume(score, 6) == (5.0, 6)
    assert threshold_at_volume(score, 8) == (0.0, 8)
    assert threshold_at_volume(score, 0) == (np.inf, 0)


def test_confusion_counts_add_up_to_the_leads_and_give_the_rates() -> None:
    y = np.array([1, 1, 0, 0, 0, 1, 0, 0, 0, 0])
    handed = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 1], dtype=bool)
    got = confusion(y, handed)
    assert (got["true_positives"], got["false_positives"], got["false_negatives"],
            got["true_negatives"]) == (2, 2, 1, 5)
    assert got["handed_over"] == 4
    assert got["precision"] == 0.5 and got["recall"] == pytest.approx(2 / 3)
    assert got["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert got["accuracy"] == 0.7
    none = confusion(y, np.zeros(10, dtype=bool))
    assert np.isnan(none["precision"]) and none["recall"] == 0 and none["f1"] == 0


def test_capacity_is_a_share_of_the_leads_or_leads_per_week_over_their_span() -> None:
    times = pd.Series(T0 + pd.to_timedelta(np.linspace(0, 28, 500), unit="D"))
    assert weeks_spanned(times) == pytest.approx(4.0)
    assert weeks_spanned(times.iloc[:10]) == 1.0  # under a week counts as one
    assert weeks_spanned(None) is None
    assert capacity_volume(Capacity.model_validate("10%"), 500, None) == 50
    assert capacity_volume(Capacity.model_validate("30"), 500, 4.0) == 120
    assert capacity_volume(Capacity.model_validate("300"), 500, 4.0) == 500
    assert capacity_volume(Capacity.model_validate("30"), 500, None) is None


@pytest.fixture(scope="module")
def leads() -> dict:
    """2,000 leads over 20 weeks; the model's score knows the outcome better than the
    points, whose scores tie a lot."""
    rng = np.random.default_rng(5)
    n = 2_000
    y = (rng.random(n) < 0.1).astype(int)
    model = y + rng.normal(0, 0.6, n)
    points = np.round(y * 5 + rng.normal(0, 8, n), -1)
    times = pd.Series(T0 + pd.to_timedelta(rng.uniform(0, 140, n), unit="D"))
    return {"y": y, "scores": {"model": model, "hand-set points": points}, "times": times}


def test_every_confusion_matrix_of_the_page_sums_to_the_test_leads(leads: dict) -> None:
    page = accuracy_page(leads["y"], leads["scores"], leads["times"], 400, "mql",
                         Capacity.model_validate("25"))
    assert page["test_leads"] == 2_000 and page["converters"] == int(leads["y"].sum())
    assert page["weeks"] == pytest.approx(20, abs=0.1)
    for block in page["thresholds"].values():
        for row in block["scorers"].values():
            assert sum(row[k] for k in ("true_positives", "false_positives",
                                        "false_negatives", "true_negatives")) == 2_000
            assert row["true_positives"] + row["false_negatives"] == page["converters"]
            assert row["expected_converters_per_week"] == pytest.approx(
                row["true_positives"] / page["weeks"])
    at_capacity = page["thresholds"]["capacity"]
    assert at_capacity["volume"] == round(25 * page["weeks"])
    model = at_capacity["scorers"]["model"]
    assert abs(model["handed_over"] - at_capacity["volume"]) <= 1  # the model rarely ties
    assert model["recall"] > at_capacity["scorers"]["hand-set points"]["recall"]


def test_the_backtest_takes_each_weeks_best_leads_up_to_the_capacity(leads: dict) -> None:
    result = backtest(leads["y"], leads["scores"], leads["times"],
                      Capacity.model_validate("25"))
    assert result["weeks"] == 13 and len(result["weekly"]) == 13
    inside = leads["times"] > pd.Timestamp(result["start"])
    assert result["leads"] == int(inside.sum())
    assert result["converters"] == int(leads["y"][inside.to_numpy()].sum())
    for week in result["weekly"]:
        assert week["handed_over"] == min(25, week["leads"])
        for reached in week["reached"].values():
            assert 0 <= reached <= min(week["converters"], week["handed_over"]) + 1e-9
    perfect = backtest(leads["y"], {"perfect": leads["y"].astype(float)}, leads["times"],
                       Capacity.model_validate("25"))
    assert perfect["scorers"]["perfect"]["converters_reached"] == pytest.approx(
        sum(min(w["converters"], w["handed_over"]) for w in perfect["weekly"]))
    shared = backtest(leads["y"], leads["scores"], leads["times"],
                      Capacity.model_validate("5%"))
    assert [w["handed_over"] for w in shared["weekly"]] == [
        round(0.05 * w["leads"]) for w in shared["weekly"]]


def test_without_times_the_page_has_no_weeks_and_no_backtest(leads: dict) -> None:
    by_share = accuracy_page(leads["y"], leads["scores"], None, 400, "mql",
                             Capacity.model_validate("10%"))
    assert by_share["weeks"] is None and by_share["backtest"] is None
    assert by_share["thresholds"]["capacity"]["volume"] == 200
    assert "expected_converters_per_week" not in by_share["thresholds"]["capacity"][
        "scorers"]["model"]
    weekly = accuracy_page(leads["y"], leads["scores"], None, 400, "mql",
                           Capacity.model_validate("25"))
    assert weekly["thresholds"]["capacity"] is None
    assert "give it as a share" in weekly["note"]


def test_at_volume_reports_no_threshold_when_nobody_is_handed_over() -> None:
    block = at_volume(np.array([0, 1]), {"model": np.array([0.2, 0.9])}, 0, None)
    assert block["model"]["threshold"] is None and block["model"]["handed_over"] == 0
