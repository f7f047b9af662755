import struct
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon
from sklearn.metrics import average_precision_score, roc_auc_score

from predictive_scoring.evaluate import (
    calibration_table,
    expected_calibration_error,
    gain_at,
    gain_curve,
    stage_conversion,
)
from predictive_scoring.reporting.driver_plots import (
    GROUP_COLOURS,
    beeswarm_figure,
    importance_figure,
    quadrant_figure,
)
from predictive_scoring.reporting.plots import (
    NAMED_COLOURS,
    SCORER_COLOURS,
    calibration_figure,
    gain_figure,
    pr_figure,
    roc_figure,
    save_figures,
    score_distribution_figure,
    stage_conversion_figure,
)
from predictive_scoring.stages import FUNNEL
from tests.helpers import message_of

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MARKS = (0.05, 0.1, 0.2)
STAGES = [stage.value for stage in FUNNEL]


def _leads(n: int = 600, seed: int = 0) -> dict[str, np.ndarray]:
    """Labels, a true probability, a noisy model probability and heavily tied rule points."""
    rng = np.random.default_rng(seed)
    truth = 1 / (1 + np.exp(-rng.normal(-2.5, 1.2, n)))
    return {"y": (rng.uniform(size=n) < truth).astype(int), "truth": truth,
            "model": np.clip(truth * np.exp(rng.normal(0, 0.5, n)), 0, 1),
            "points": np.round(truth * 10) * 10}


LEADS = _leads()
SCORERS = {"model": LEADS["model"], "rules (points)": LEADS["points"], "oracle": LEADS["truth"]}


def _legend_texts(ax: Axes) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def _scorer_lines(ax: Axes) -> dict[str, Line2D]:
    """The axes' lines by label, for the scorers only."""
    return {line.get_label(): line for line in ax.get_lines()
            if line.get_label().split(",")[0] in SCORERS}


def _bin_heights(outline: Polygon) -> np.ndarray:
    """The bin heights of a step or stepfilled histogram outline (one per bin)."""
    xy = outline.get_xy()
    n_bins = np.unique(xy[:, 0]).size - 1
    return xy[1:2 * n_bins:2, 1]


def _assert_labelled(figure: Figure, n_axes: int) -> None:
    """Every axes has a y label, some axes an x label, and the figure a title."""
    axes = figure.get_axes()
    assert len(axes) == n_axes
    assert all(ax.get_ylabel() for ax in axes)
    assert any(ax.get_xlabel() for ax in axes)
    assert figure.get_suptitle() or axes[0].get_title()
    assert any(ax.get_legend() is not None for ax in axes)


# ---------------------------------------------------------------------------- ROC, PR
def test_roc_has_one_line_per_scorer_and_the_chance_diagonal() -> None:
    figure = roc_figure(LEADS["y"], SCORERS)
    _assert_labelled(figure, 1)
    (ax,) = figure.get_axes()
    assert len(ax.get_lines()) == len(SCORERS) + 1
    assert ax.get_title() == "ROC curves"
    assert "%" in ax.get_xlabel() and "%" in ax.get_ylabel()
    legend = _legend_texts(ax)
    for name, score in SCORERS.items():
        assert f"{name}, AUC {roc_auc_score(LEADS['y'], score):.3f}" in legend
    np.testing.assert_allclose(ax.get_lines()[-1].get_xydata(), [[0, 0], [1, 1]])


def test_pr_has_average_precision_in_legend_and_the_base_rate_line() -> None:
    figure = pr_figure(LEADS["y"], SCORERS)
    _assert_labelled(figure, 1)
    (ax,) = figure.get_axes()
    assert len(ax.get_lines()) == len(SCORERS) + 1
    legend = _legend_texts(ax)
    for name, score in SCORERS.items():
        assert f"{name}, AP {average_precision_score(LEADS['y'], score):.3f}" in legend
    base_rate = ax.get_lines()[-1]
    np.testing.assert_allclose(base_rate.get_ydata(), [LEADS["y"].mean()] * 2)
    assert f"base rate {LEADS['y'].mean():.1%}" in legend


@pytest.mark.parametrize(("figure_of", "outcome", "reason"), [
    (roc_figure, 0, "none of the 30 leads converted"),
    (roc_figure, 1, "all 30 leads converted"),
    (pr_figure, 0, "none of the 30 leads converted"),
    (pr_figure, 1, "all 30 leads converted"),
    (gain_figure, 0, "none of the 30 leads converted"),
])
def test_ranking_figures_with_one_outcome_say_so_and_draw_no_curve(
    figure_of, outcome: int, reason: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = figure_of(np.full(30, outcome), {"model": LEADS["model"][:30]})
    (ax,) = figure.get_axes()
    assert ax.get_title().endswith(f"(not defined: {reason})")
    assert [text.get_text() for text in ax.texts] == [f"not defined: {reason}"]
    assert not _scorer_lines(ax)


def test_gain_when_every_lead_converted_is_the_random_line() -> None:
    (ax,) = gain_figure(np.ones(30), {"model": LEADS["model"][:30]}).get_axes()
    (line,) = _scorer_lines(ax).values()
    np.testing.assert_allclose(line.get_xdata(), line.get_ydata())


def test_each_report_scorer_keeps_its_colour_in_every_figure() -> None:
    figures = [figure_of(LEADS["y"], SCORERS) for figure_of in (roc_figure, pr_figure,
                                                                gain_figure)]
    figures.append(calibration_figure(LEADS["y"], SCORERS | {"rules (points)": LEADS["model"]},
                                      5))
    for figure in figures:
        lines = _scorer_lines(figure.get_axes()[0]).values()
        assert [to_hex(line.get_color()).upper() for line in lines] == \
            list(SCORER_COLOURS[:len(SCORERS)])


def test_a_figure_without_the_rules_keeps_the_oracle_colour() -> None:
    probabilities = {"model": LEADS["model"], "oracle": LEADS["truth"]}
    reliability, _ = calibration_figure(LEADS["y"], probabilities, 5).get_axes()
    colours = [to_hex(line.get_color()).upper() for line in _scorer_lines(reliability).values()]
    assert colours == [NAMED_COLOURS["model"], NAMED_COLOURS["oracle"]]


def test_other_scorer_names_take_unused_colours_in_order() -> None:
    names = ["oracle", *(f"variant {i}" for i in range(len(SCORER_COLOURS)))]
    scorers = dict.fromkeys(names, LEADS["model"])
    (ax,) = roc_figure(LEADS["y"], scorers).get_axes()
    colours = [to_hex(line.get_color()).upper() for line in ax.get_lines()[:-1]]
    assert colours[0] == NAMED_COLOURS["oracle"]
    unused = [colour for colour in SCORER_COLOURS if colour != NAMED_COLOURS["oracle"]]
    assert colours[1:] == [*unused, unused[0]]


@pytest.mark.parametrize(("y", "scorers", "expected"), [
    (np.array([0, 1, 2]), {"model": np.zeros(3)}, "found 2 at row 2"),
    (np.array([0, 1, 0]), {"model": np.zeros(2)}, "score 'model' has shape (2,)"),
    (np.array([0, 1, 0]), {"model": np.array([0.1, np.nan, 0.3])}, "found nan at row 1"),
    (np.array([0, 1, 0]), {}, "scorers is empty"),
])
def test_bad_inputs_are_named(y: np.ndarray, scorers: dict, expected: str) -> None:
    for figure_of in (roc_figure, pr_figure, gain_figure):
        assert expected in message_of(ValueError, figure_of, y, scorers)


# ---------------------------------------------------------------------------- calibration
def test_calibration_draws_the_reliability_table_and_a_histogram_below() -> None:
    probabilities = {"model": LEADS["model"], "oracle": LEADS["truth"]}
    figure = calibration_figure(LEADS["y"], probabilities, 8)
    _assert_labelled(figure, 2)
    reliability, histogram = figure.get_axes()
    assert reliability.get_title().startswith("Calibration")
    lines = _scorer_lines(reliability)
    assert len(reliability.get_lines()) == len(probabilities) + 1
    for name, p in probabilities.items():
        table = calibration_table(LEADS["y"], p, 8)
        line = lines[f"{name}, ECE {expected_calibration_error(LEADS['y'], p, 8):.3f}"]
        np.testing.assert_allclose(line.get_xdata(), table["mean_predicted"])
        np.testing.assert_allclose(line.get_ydata(), table["observed_rate"])
        assert max(table["mean_predicted"].max(), table["observed_rate"].max()) \
            <= reliability.get_xlim()[1] == reliability.get_ylim()[1]
    assert len(histogram.patches) == len(probabilities)
    assert histogram.get_xlabel() and histogram.get_ylabel()


def test_calibration_histogram_counts_every_lead_even_beyond_the_axes() -> None:
    figure = calibration_figure(LEADS["y"], {"model": LEADS["model"]}, 5)
    _, histogram = figure.get_axes()
    assert LEADS["model"].max() > histogram.get_xlim()[1]
    (outline,) = histogram.patches
    assert _bin_heights(outline).sum() == pytest.approx(1.0)


# ----------------------------------------------------------------------------- gain
def test_gain_curves_come_from_evaluate_with_random_and_perfect_lines() -> None:
    figure = gain_figure(LEADS["y"], SCORERS, MARKS)
    _assert_labelled(figure, 1)
    (ax,) = figure.get_axes()
    assert len(ax.get_lines()) == len(SCORERS) + 2 + len(MARKS)
    for name, line in _scorer_lines(ax).items():
        np.testing.assert_allclose(line.get_xydata(),
                                   np.column_stack(gain_curve(LEADS["y"], SCORERS[name])))
    legend = _legend_texts(ax)
    assert {"random order", "perfect ranking"} <= set(legend)
    perfect = ax.get_lines()[len(SCORERS) + 1]
    np.testing.assert_allclose(perfect.get_xdata(), [0, LEADS["y"].mean(), 1])


def test_gain_is_labelled_at_each_mark_clear_of_the_curves() -> None:
    (ax,) = gain_figure(LEADS["y"], SCORERS, MARKS).get_axes()
    labels = [(text.xy, text.get_text()) for text in ax.texts]
    assert len(labels) == len(SCORERS) * len(MARKS)
    for mark in MARKS:
        gains = [gain_at(LEADS["y"], score, [mark])[0] for score in SCORERS.values()]
        at_mark = sorted(xy[1] for xy, _ in labels if xy[0] == mark)
        assert sorted(text for xy, text in labels if xy[0] == mark) == \
            sorted(f"{gain:.0%}" for gain in gains)
        assert min(at_mark) > max(gains) or max(at_mark) < min(gains)
        assert np.diff(at_mark).min() >= 0.04


def test_gain_labels_move_below_the_curves_near_the_top() -> None:
    (ax,) = gain_figure(LEADS["y"], SCORERS, [0.9]).get_axes()
    gains = [gain_at(LEADS["y"], score, [0.9])[0] for score in SCORERS.values()]
    assert max(text.xy[1] for text in ax.texts) < min(gains)


# ---------------------------------------------------------------------- distributions
def test_score_distribution_has_two_panels_split_by_outcome() -> None:
    y = LEADS["y"]
    figure = score_distribution_figure(100 * LEADS["model"], LEADS["points"], y)
    _assert_labelled(figure, 2)
    assert figure.get_suptitle() == "Score distribution by outcome"
    model_ax, rules_ax = figure.get_axes()
    assert model_ax.get_xlim() == (0, 10 * np.ceil(10 * LEADS["model"].max()))
    expected = {f"did not convert (n={(y == 0).sum():,})", f"converted (n={(y == 1).sum():,})"}
    for ax in (model_ax, rules_ax):
        assert ax.get_title() and ax.get_xlabel()
        assert set(_legend_texts(ax)) == expected
        assert len(ax.patches) == 2


def test_score_distribution_normalises_each_outcome_to_its_own_leads() -> None:
    y = LEADS["y"]
    figure = score_distribution_figure(100 * LEADS["model"], LEADS["points"], y)
    for ax in figure.get_axes():
        for outline in ax.patches:
            assert _bin_heights(outline).sum() == pytest.approx(1.0)


def test_score_distribution_with_one_outcome_draws_that_outcome_only() -> None:
    figure = score_distribution_figure(np.linspace(0, 100, 20), np.arange(20), np.zeros(20))
    for ax in figure.get_axes():
        assert _legend_texts(ax) == ["did not convert (n=20)"]


@pytest.mark.parametrize(("highest", "upper"), [(23.0, 30), (0.0, 10), (96.5, 100)])
def test_score_distribution_zooms_to_the_model_scores_in_use(highest: float, upper: int) -> None:
    scores = np.linspace(0, highest, 20)
    model_ax, _ = score_distribution_figure(scores, np.arange(20), np.arange(20) % 2).get_axes()
    assert model_ax.get_xlim() == (0, upper)


def test_score_distribution_refuses_a_model_score_outside_0_100() -> None:
    message = message_of(ValueError, score_distribution_figure,
                         np.array([10.0, 0.7, 101.0]), np.zeros(3), np.array([0, 1, 0]))
    assert "found 101.0 at row 2" in message


# ---------------------------------------------------------------------------- stages
def _stage_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    y = LEADS["y"]
    by_model = np.array(STAGES)[np.searchsorted(
        np.quantile(LEADS["model"], [0.3, 0.5, 0.7, 0.8, 0.9, 0.97]), LEADS["model"])]
    by_rules = np.array(STAGES)[np.minimum(LEADS["points"] // 20, 5).astype(int)]
    return stage_conversion(y, by_model, STAGES), stage_conversion(y, by_rules, STAGES)


def test_stage_conversion_has_grouped_bars_with_lead_counts() -> None:
    table_model, table_rules = _stage_tables()
    figure = stage_conversion_figure(table_model, table_rules)
    _assert_labelled(figure, 1)
    (ax,) = figure.get_axes()
    assert len(ax.patches) == 2 * len(STAGES)
    model_bars, rules_bars = ax.patches[:len(STAGES)], ax.patches[len(STAGES):]
    np.testing.assert_allclose([bar.get_height() for bar in model_bars],
                               table_model["conversion_rate"].fillna(0))
    np.testing.assert_allclose([bar.get_height() for bar in rules_bars],
                               table_rules["conversion_rate"].fillna(0))
    counts = [text.get_text() for text in ax.texts]
    assert counts == [f"{n:,}" for n in [*table_model["leads"], *table_rules["leads"]]]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == STAGES
    assert _legend_texts(ax) == ["model", "rules (points)"]
    assert [to_hex(bar.get_facecolor()).upper() for bar in (model_bars[0], rules_bars[0])] \
        == list(SCORER_COLOURS[:2])


def test_stage_conversion_refuses_tables_over_different_stages() -> None:
    table_model, table_rules = _stage_tables()
    message = message_of(ValueError, stage_conversion_figure, table_model, table_rules.iloc[1:])
    assert "different stages" in message
    message = message_of(ValueError, stage_conversion_figure, table_model,
                         table_rules.drop(columns="leads"))
    assert "table_rules lacks columns ['leads']" in message


# ---------------------------------------------------------------------------- saving
def test_save_figures_writes_named_pngs_of_report_size(tmp_path: Path) -> None:
    figures = {"roc": roc_figure(LEADS["y"], SCORERS),
               "gain": gain_figure(LEADS["y"], SCORERS, MARKS)}
    out_dir = tmp_path / "report" / "figures"
    paths = save_figures(figures, out_dir)
    assert paths == [out_dir / "roc.png", out_dir / "gain.png"]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        width, height = struct.unpack(">II", data[16:24])
        assert (width, height) == (800, 550)


@pytest.mark.parametrize("name", ["", "sub/roc", ".."])
def test_save_figures_refuses_names_that_are_not_plain_file_names(
    tmp_path: Path, name: str
) -> None:
    message = message_of(ValueError, save_figures, {name: Figure()}, tmp_path)
    assert "plain file name" in message


# ------------------------------------------------- lift, stage cross-table, quadrants
def test_lift_figure_draws_each_scorer_and_the_random_line() -> None:
    from predictive_scoring.reporting.plots import lift_figure

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    figure = lift_figure(y, {"model": y + rng.normal(0, 0.5, 500), "rules (points)":
                             rng.normal(size=500)})
    ax = figure.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"model", "rules (points)", "random order"}
    model = lines["model"].get_ydata()
    assert model[0] > 1.5 and model[-1] == pytest.approx(1.0)  # all leads: the base rate


def test_stage_crosstab_figure_writes_leads_and_rate_in_each_cell() -> None:
    from predictive_scoring.evaluate import stage_crosstab
    from predictive_scoring.reporting.plots import stage_crosstab_figure

    leads, rate = stage_crosstab([0, 1, 1], ["lead", "mql", "mql"], ["lead", "mql", "lead"],
                                 ["lead", "mql"])
    texts = [t.get_text() for t in stage_crosstab_figure(leads, rate).axes[0].texts]
    assert texts == ["1\n0%", "0", "1\n100%", "1\n100%"]
    with pytest.raises(ValueError, match="same square table"):
        stage_crosstab_figure(leads, rate.iloc[:1])


def test_quadrant_figure_samples_at_most_the_given_leads_and_names_the_quadrants() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 300)
    figure = quadrant_figure(rng.normal(size=300), rng.normal(size=300), y, 0.0, 0.0, most=100)
    ax = figure.axes[0]
    drawn = sum(len(c.get_offsets()) for c in ax.collections)
    assert drawn == 100
    assert {t.get_text() for t in ax.texts} == {"sales-ready", "nurture", "check fit",
                                                "low priority"}


# ----------------------------------------------------------------------- explanations
def _contributions(n: int = 400) -> tuple[np.ndarray, pd.DataFrame, list[str]]:
    rng = np.random.default_rng(3)
    features = pd.DataFrame({"visits": rng.poisson(3, n).astype(float),
                             "industry": rng.choice(["software", "retail"], n),
                             "noise": rng.normal(size=n)})
    values = np.column_stack([0.5 * (features["visits"] - 3),
                              np.where(features["industry"] == "software", 0.2, -0.2),
                              0.01 * features["noise"]])
    return values, features, list(features.columns)


def test_beeswarm_puts_the_strongest_field_on_top_and_colours_by_value() -> None:
    values, features, fields = _contributions()
    figure = beeswarm_figure(values, features, fields, max_features=2)
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["industry", "visits"]
    visits = ax.collections[-1]  # the top row: its coloured points
    assert np.allclose(np.sort(visits.get_offsets()[:, 0]), np.sort(values[:, 0]))
    high = visits.get_array()[np.argmax(visits.get_offsets()[:, 0])]
    assert high == pytest.approx(features["visits"].rank(pct=True).max())
    text_row = ax.collections[0]  # industry: categories are drawn grey
    assert len(text_row.get_offsets()) == len(features)
    assert "do not match" in message_of(ValueError, beeswarm_figure, values[:, :2], features,
                                        fields)


def test_importance_bars_follow_the_table_coloured_by_group() -> None:
    importance = pd.DataFrame({"feature": ["visits", "industry", "noise"],
                               "group": ["engagement", "fit", "engagement"],
                               "mean_abs": [0.9, 0.2, 0.01]})
    groups = pd.DataFrame({"group": ["engagement", "fit"], "mean_abs": [0.9, 0.2]})
    fields_ax, groups_ax = importance_figure(importance, groups, max_features=2).axes
    bars = fields_ax.patches
    assert [round(b.get_width(), 6) for b in bars] == [0.2, 0.9]  # strongest on top
    assert to_hex(bars[1].get_facecolor()) == GROUP_COLOURS["engagement"].lower()
    assert [t.get_text() for t in groups_ax.get_yticklabels()] == ["fit", "engagement"]
    legend = fields_ax.get_legend()
    assert {text.get_text(): to_hex(patch.get_facecolor()) for text, patch in
            zip(legend.get_texts(), legend.get_patches(), strict=True)} == {
        group: colour.lower() for group, colour in GROUP_COLOURS.items()}
