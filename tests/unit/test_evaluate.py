import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from predictive_scoring.evaluate import (
    calibration_table,
    captured_at_volume,
    expected_calibration_error,
    gain_at,
    gain_curve,
    isotonic_points_to_probability,
    lift_at,
    probability_metrics,
    stage_conversion,
    stage_thresholds_matching_shares,
    volume_of_stages,
)
from predictive_scoring.stages import FUNNEL, Stage, stage_for_values
from tests.helpers import message_of

METRIC_KEYS = {"roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_at_10",
               "captured_at_rules_volume", "gain_at_5", "gain_at_10", "gain_at_20",
               "lift_at_5", "lift_at_20"}

# Three tied blocks, best first: scores 5 (1 of 3 converted), 3 (2 of 2), 1 (0 of 1).
TIED_Y = np.array([1, 0, 0, 1, 1, 0])
TIED_SCORE = np.array([5, 5, 5, 3, 3, 1])


def _simulated(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from them: a perfectly calibrated sample."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, n)
    return (rng.uniform(0, 1, n) < p).astype(int), p


# ------------------------------------------------------------------- gain and lift
def test_all_scores_equal_gain_is_the_fraction() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    flat = np.zeros(10)
    assert gain_at(y, flat, [0.1])[0] == 0.1
    np.testing.assert_allclose(gain_at(y, flat, [0.3, 0.5, 1.0]), [0.3, 0.5, 1.0])
    np.testing.assert_allclose(lift_at(y, flat, [0.1, 0.3, 1.0]), [1.0, 1.0, 1.0])


@pytest.mark.parametrize(("volume", "captured"), [
    (0, 0.0), (1, 1 / 9), (2, 2 / 9), (3, 1 / 3), (4, 2 / 3), (5, 1.0), (6, 1.0),
])
def test_tied_block_at_the_cut_counts_proportionally(volume: int, captured: float) -> None:
    assert captured_at_volume(TIED_Y, TIED_SCORE, volume) == pytest.approx(captured)


def test_ties_do_not_depend_on_row_order() -> None:
    flipped = slice(None, None, -1)
    for volume in range(7):
        assert captured_at_volume(TIED_Y[flipped], TIED_SCORE[flipped], volume) == (
            pytest.approx(captured_at_volume(TIED_Y, TIED_SCORE, volume)))


def test_perfect_ranking_gain_and_lift() -> None:
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    score = np.arange(10, 0, -1)
    np.testing.assert_allclose(gain_at(y, score, [0.1, 0.2, 0.5]), [0.5, 1.0, 1.0])
    np.testing.assert_allclose(lift_at(y, score, [0.1, 0.2, 0.5]), [5.0, 5.0, 2.0])


def test_fraction_between_leads_counts_the_lead_in_part() -> None:
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    assert gain_at(y, np.arange(10, 0, -1), [0.05])[0] == pytest.approx(0.5)


def test_gain_matches_captured_at_the_same_volume() -> None:
    y, p = _simulated(500, seed=3)
    coarse = np.round(p, 1)  # heavy ties
    assert gain_at(y, coarse, [0.2])[0] == pytest.approx(captured_at_volume(y, coarse, 100))


def test_gain_curve_has_a_point_per_tie_boundary() -> None:
    leads, positives = gain_curve(TIED_Y, TIED_SCORE)
    np.testing.assert_allclose(leads, [0, 3 / 6, 5 / 6, 1])
    np.testing.assert_allclose(positives, [0, 1 / 3, 1, 1])


def test_no_positives_gives_nan_gain() -> None:
    assert np.isnan(gain_at(np.zeros(5), np.arange(5), [0.2])[0])
    assert np.isnan(captured_at_volume(np.zeros(5), np.arange(5), 2))


def test_pandas_series_are_read_by_position() -> None:
    y = pd.Series(TIED_Y, index=[10, 11, 12, 13, 14, 15])
    score = pd.Series(TIED_SCORE, index=[15, 14, 13, 12, 11, 10])
    assert captured_at_volume(y, score, 4) == pytest.approx(2 / 3)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_fractions_outside_unit_interval_are_refused(fraction: float) -> None:
    assert "fractions" in message_of(ValueError, gain_at, TIED_Y, TIED_SCORE, [fraction])


def test_volume_beyond_the_leads_is_refused() -> None:
    assert "volume" in message_of(ValueError, captured_at_volume, TIED_Y, TIED_SCORE, 7)


# -------------------------------------------------------------------- calibration
def test_ece_small_for_calibrated_large_for_squared() -> None:
    y, p = _simulated(200_000)
    assert expected_calibration_error(y, p, n_bins=10) < 0.01
    assert expected_calibration_error(y, p**2, n_bins=10) > 0.1
    assert expected_calibration_error(y, p, n_bins=10, strategy="uniform") < 0.01


def test_ece_of_base_rate_constant_is_zero() -> None:
    y, _ = _simulated(10_000, seed=1)
    constant = np.full(len(y), y.mean())
    assert expected_calibration_error(y, constant, n_bins=10) == pytest.approx(0, abs=1e-12)
    assert len(calibration_table(y, constant, n_bins=10)) == 1


def test_ece_hand_computed() -> None:
    y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.7, 0.9])
    # bins {0.1, 0.2} (mean 0.15, observed 0) and {0.7, 0.9} (mean 0.8, observed 1)
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.5 * 0.15 + 0.5 * 0.2)


def test_calibration_table_equal_frequency_bins() -> None:
    y, p = _simulated(1000, seed=2)
    table = calibration_table(y, p, n_bins=4)
    assert list(table.columns) == ["lowest_predicted", "highest_predicted", "mean_predicted",
                                   "observed_rate", "count"]
    assert table["count"].tolist() == [250, 250, 250, 250]
    assert table["mean_predicted"].is_monotonic_increasing
    assert (table["highest_predicted"].to_numpy()[:-1]
            < table["lowest_predicted"].to_numpy()[1:]).all()


def test_calibration_bins_keep_ties_together() -> None:
    p = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.5, 0.9])
    table = calibration_table(np.zeros(8), p, n_bins=4)
    assert table["count"].sum() == 8
    assert table.loc[0, "count"] == 6


@pytest.mark.parametrize("n_bins", [0, -3, 2.5])
def test_bad_bin_count_is_refused(n_bins: object) -> None:
    assert "n_bins" in message_of(ValueError, expected_calibration_error, TIED_Y,
                                  np.full(6, 0.5), n_bins)


# ----------------------------------------------------------- probability metrics
def test_probability_metrics_match_sklearn() -> None:
    y, p = _simulated(2000, seed=4)
    metrics = probability_metrics(y, p, volume=300, ece_bins=10)
    assert set(metrics) == METRIC_KEYS
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert metrics["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert metrics["log_loss"] == pytest.approx(log_loss(y, p))
    assert metrics["brier"] == pytest.approx(brier_score_loss(y, p))
    assert metrics["ece"] == pytest.approx(expected_calibration_error(y, p, n_bins=10))
    assert metrics["lift_at_10"] == pytest.approx(lift_at(y, p, [0.1])[0])
    assert metrics["gain_at_20"] == pytest.approx(gain_at(y, p, [0.2])[0])
    assert metrics["captured_at_rules_volume"] == pytest.approx(captured_at_volume(y, p, 300))
    assert all(isinstance(value, float) for value in metrics.values())


def test_probability_metrics_single_class_gives_nan_aucs_quietly() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = probability_metrics(np.zeros(50), np.linspace(0, 0.5, 50), 10, ece_bins=5)
    assert np.isnan(metrics["roc_auc"])
    assert np.isnan(metrics["pr_auc"])
    assert np.isfinite(metrics["log_loss"])
    assert np.isfinite(metrics["brier"])


def test_log_loss_clips_certain_mistakes() -> None:
    metrics = probability_metrics(np.array([0, 1]), np.array([1.0, 0.0]), 1, ece_bins=2)
    lowest, highest = 1e-15, 1 - 1e-15  # 1 - highest is 1.1e-15 in float64
    assert metrics["log_loss"] == pytest.approx(-(np.log(lowest) + np.log(1 - highest)) / 2)


def test_length_mismatch_names_the_argument() -> None:
    message = message_of(ValueError, probability_metrics, np.zeros(5), np.zeros(4), 1, 2)
    assert "p" in message
    assert "5" in message
    assert "4" in message


def test_bad_labels_and_probabilities_are_refused() -> None:
    assert "y" in message_of(ValueError, gain_at, np.array([0, 2]), np.zeros(2), [0.5])
    assert "p" in message_of(ValueError, expected_calibration_error, np.array([0, 1]),
                             np.array([0.5, 1.2]), 2)


# -------------------------------------------------------------- isotonic mapping
def test_isotonic_points_are_monotone_and_calibrated_on_training() -> None:
    rng = np.random.default_rng(5)
    points = rng.integers(0, 60, 3000).astype(float)
    y = (rng.uniform(0, 1, 3000) < 0.02 + points / 100).astype(int)
    to_probability = isotonic_points_to_probability(points, y)
    grid = to_probability(np.arange(-10.0, 80.0))
    assert (np.diff(grid) >= 0).all()
    assert grid[0] == to_probability(np.array([points.min()]))[0]  # clipped below range
    fitted = to_probability(points)
    assert fitted.mean() == pytest.approx(y.mean())
    for level in np.unique(fitted):
        assert y[fitted == level].mean() == pytest.approx(level)


# ------------------------------------------------------------------------- stages
def test_stage_conversion_by_hand() -> None:
    y = np.array([0, 1, 1, 0, 1, 0])
    stages = np.array(["lead", "mql", "mql", "lead", "sql", "subscriber"], dtype=object)
    table = stage_conversion(y, stages, FUNNEL)
    assert table.index.tolist() == [s.value for s in FUNNEL]
    assert table["leads"].tolist() == [1, 2, 2, 0, 1, 0, 0]
    assert table.loc["mql", "conversion_rate"] == 1.0
    assert table.loc["lead", "conversion_rate"] == 0.0
    assert np.isnan(table.loc["sal", "conversion_rate"])
    assert table.loc["mql", "share_of_positives"] == pytest.approx(2 / 3)


def test_stage_conversion_totals() -> None:
    rng = np.random.default_rng(6)
    stages = pd.Series(rng.choice([s.value for s in FUNNEL], 400))
    y = rng.integers(0, 2, 400)
    table = stage_conversion(y, stages, FUNNEL)
    assert table["leads"].sum() == 400
    assert table["share_of_leads"].sum() == pytest.approx(1)
    assert table["share_of_positives"].sum() == pytest.approx(1)


def test_unknown_stage_is_named() -> None:
    message = message_of(ValueError, stage_conversion, np.array([0, 1]),
                         np.array(["mql", "lost"]), FUNNEL)
    assert "lost" in message


def test_volume_of_stages() -> None:
    stages = np.array(["lead", Stage.MQL, "sql", "subscriber", "customer"], dtype=object)
    assert volume_of_stages(stages, Stage.MQL, FUNNEL) == 3
    assert volume_of_stages(stages, "subscriber", FUNNEL) == 5
    assert "at_or_above" in message_of(ValueError, volume_of_stages, stages, "won", FUNNEL)


def test_captured_at_rules_volume_is_the_rules_own_selection() -> None:
    rng = np.random.default_rng(7)
    points = rng.integers(0, 70, 1000)
    y = (rng.uniform(0, 1, 1000) < points / 100).astype(int)
    bars = {Stage.SUBSCRIBER: 0, Stage.LEAD: 6, Stage.MQL: 16, Stage.SQL: 50}
    stages = stage_for_values(points, bars)
    volume = volume_of_stages(stages, Stage.MQL, FUNNEL)
    rules_share = y[points >= 16].sum() / y.sum()
    assert volume == (points >= 16).sum()
    assert captured_at_volume(y, points, volume) == pytest.approx(rules_share)


# -------------------------------------------------------------- stage thresholds
def _counts(p: np.ndarray, thresholds: dict) -> np.ndarray:
    stages = stage_for_values(p, thresholds)
    return np.array([(stages == s.value).sum() for s in FUNNEL])


def test_thresholds_reproduce_shares() -> None:
    _, p = _simulated(1000, seed=8)
    shares = {Stage.SUBSCRIBER: 0.4, Stage.LEAD: 0.3, Stage.MQL: 0.15, Stage.SAL: 0.05,
              Stage.SQL: 0.05, Stage.OPPORTUNITY: 0.03, Stage.CUSTOMER: 0.02}
    thresholds = stage_thresholds_matching_shares(p, shares, FUNNEL)
    assert list(thresholds) == list(FUNNEL)
    assert _counts(p, thresholds).tolist() == [400, 300, 150, 50, 50, 30, 20]
    assert (np.diff(list(thresholds.values())) > 0).all()


def test_thresholds_with_empty_stages_and_ties() -> None:
    p = np.array([0.0, 0.0, 0.2, 0.2, 0.2, 0.5, 0.9, 1.0])
    shares = {"lead": 0.25, "sal": 0.375, "opportunity": 0.375}  # first stage empty
    thresholds = stage_thresholds_matching_shares(p, shares, FUNNEL)
    assert (np.diff(list(thresholds.values())) > 0).all()
    assert _counts(p, thresholds).tolist() == [0, 2, 0, 3, 0, 3, 0]


def test_shares_not_summing_to_one_are_refused() -> None:
    message = message_of(ValueError, stage_thresholds_matching_shares, np.array([0.1, 0.2]),
                         {"lead": 0.5, "mql": 0.2}, FUNNEL)
    assert "stage_shares" in message


share = st.one_of(st.just(0.0), st.floats(0.01, 1.0))


@settings(max_examples=60, deadline=None)
@given(raw=st.lists(share, min_size=7, max_size=7).filter(lambda s: sum(s) > 0),
       n=st.integers(1, 300), seed=st.integers(0, 2**32 - 1))
def test_thresholds_property(raw: list[float], n: int, seed: int) -> None:
    p = np.random.default_rng(seed).uniform(0, 1, n)
    shares = np.array(raw) / sum(raw)
    thresholds = stage_thresholds_matching_shares(p, dict(zip(FUNNEL, shares, strict=True)),
                                                  FUNNEL)
    assert (np.diff(list(thresholds.values())) > 0).all()
    assert (np.abs(_counts(p, thresholds) - shares * n) <= 1 + 1e-9).all()


# ------------------------------------------------------- stage cross-table and ranking
def test_stage_crosstab_counts_every_pair_and_its_conversion() -> None:
    from predictive_scoring.evaluate import stage_crosstab

    order = ["lead", "mql", "sql"]
    rules = ["lead", "lead", "mql", "sql", "sql", "lead"]
    model = ["lead", "mql", "mql", "mql", "sql", "mql"]
    y = [0, 1, 0, 0, 1, 0]
    leads, rate = stage_crosstab(y, rules, model, order)
    assert leads.loc["lead"].tolist() == [1, 2, 0]
    assert leads.to_numpy().sum() == 6
    assert rate.loc["lead", "mql"] == 0.5 and rate.loc["sql", "sql"] == 1.0
    assert np.isnan(rate.loc["mql", "lead"])


def test_stage_moves_split_leads_up_same_down_with_their_conversion() -> None:
    from predictive_scoring.evaluate import stage_moves

    moves = stage_moves([1, 1, 0, 0, 0], ["lead", "lead", "sql", "mql", "mql"],
                        ["sql", "mql", "lead", "mql", "mql"], ["lead", "mql", "sql"])
    assert moves["leads"].tolist() == [2, 2, 1]
    assert moves.loc["up", "conversion_rate"] == 1.0 and moves.loc["down", "conversion_rate"] == 0
    assert moves["share_of_leads"].sum() == pytest.approx(1.0)


def test_ranking_table_ranks_points_and_probabilities_alike() -> None:
    from predictive_scoring.evaluate import ranking_table

    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.7, 0.8, 0.3, 0.9])
    table = ranking_table(y, {"p": p, "points": np.rint(p * 40) - 5, "reversed": -p}, 3)
    assert table.loc["p"].tolist() == pytest.approx(table.loc["points"].tolist())
    assert table.loc["p", "roc_auc"] == 1.0 and table.loc["reversed", "roc_auc"] == 0.0
    assert table.loc["p", "captured_at_volume"] == 1.0
