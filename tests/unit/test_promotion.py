"""Paired promotion: the bootstrap over leads, the decision rule and the preview, on
crafted scores (the end-to-end runs are in tests/integration/test_retrain_cli.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from predictive_scoring import workflow
from predictive_scoring.workflow.paired import (
    lead_resamples,
    paired_bootstrap,
    weighted_average_precision,
    weighted_roc_auc,
)
from predictive_scoring.workflow.preview import promotion_preview, weight_moves
from predictive_scoring.workflow.promotion import (
    Failure,
    PromotionSettings,
    SameLeads,
    champion_unusable,
    decide,
)

SETTINGS = PromotionSettings("roc_auc", resamples=400, seed=3)


def leads_with_snapshots(n_leads: int, seed: int) -> tuple[np.ndarray, np.ndarray,
                                                          np.ndarray]:
    """Leads with 1 to 3 snapshots each, the lead's outcome on all of them, and a latent
    quality a good scorer sees."""
    rng = np.random.default_rng(seed)
    per_lead = rng.integers(1, 4, n_leads)
    lead = np.repeat([f"L{i}" for i in range(n_leads)], per_lead)
    quality = np.repeat(rng.normal(size=n_leads), per_lead)
    y = (rng.random(len(lead)) < 1 / (1 + np.exp(-(quality * 2 - 1.5)))).astype(np.int8)
    y = pd.Series(y).groupby(lead).transform("max").to_numpy()
    return lead, y, quality


# ------------------------------------------------------------------ weighted metrics
@pytest.mark.parametrize("seed", [0, 1])
def test_weighted_metrics_equal_sklearn_with_sample_weights(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(size=300) + y, 1)  # many ties
    weights = rng.integers(0, 4, (6, 300)).astype(float)
    np.testing.assert_allclose(weighted_roc_auc(scores, y, weights),
                               [roc_auc_score(y, scores, sample_weight=w) for w in weights])
    np.testing.assert_allclose(
        weighted_average_precision(scores, y, weights),
        [average_precision_score(y, scores, sample_weight=w) for w in weights])


def test_resamples_draw_whole_leads() -> None:
    codes = np.array([0, 0, 0, 1, 2, 2, 3])
    for counts in lead_resamples(len(codes), 4, 50, seed=1):
        assert (counts.sum(axis=1) == 4).all()  # as many leads drawn as there are
        rows = counts[:, codes]
        assert (rows[:, 0] == rows[:, 1]).all() and (rows[:, 0] == rows[:, 2]).all()
        assert (rows[:, 4] == rows[:, 5]).all()


def test_bootstrap_differences_are_the_metric_on_each_resample() -> None:
    lead, y, quality = leads_with_snapshots(60, seed=2)
    rng = np.random.default_rng(5)
    a, b = quality + rng.normal(size=len(y)), quality + 2 * rng.normal(size=len(y))
    found = paired_bootstrap(y, lead, {"a": a, "b": b}, [("a", "b")], "roc_auc", 30, seed=9)
    codes = pd.factorize(pd.Series(lead))[0]
    expected = []
    for counts in lead_resamples(len(y), codes.max() + 1, 30, seed=9):
        for w in counts[:, codes]:
            expected.append(roc_auc_score(y, a, sample_weight=w)
                            - roc_auc_score(y, b, sample_weight=w))
    np.testing.assert_allclose(found.differences[("a", "b")], expected, atol=1e-6)  # float32
    assert found.values == pytest.approx({"a": roc_auc_score(y, a), "b": roc_auc_score(y, b)})
    assert found.n_leads == 60 and found.n_rows == len(y)


# ------------------------------------------------------------------ the decision
def test_a_challenger_that_loses_on_the_same_leads_is_never_promoted() -> None:
    """Its own test slice (other, easier leads) gives it the higher ROC-AUC; on the
    champion's comparison leads it is worse, and it stays challenger."""
    lead, y, quality = leads_with_snapshots(400, seed=4)
    rng = np.random.default_rng(0)
    champion = quality + 0.5 * rng.normal(size=len(y))
    challenger = quality + 2.0 * rng.normal(size=len(y))
    _, own_y, own_quality = leads_with_snapshots(400, seed=8)
    own = own_quality * 10 + rng.normal(size=len(own_y))  # an easy slice of its own
    assert roc_auc_score(own_y, own) > roc_auc_score(y, champion)
    points = quality + 3.0 * rng.normal(size=len(y))
    found = decide(SameLeads(lead, y, challenger, points, champion), SETTINGS, "1")
    assert found.decision == "kept" and not found.moves_champion
    assert found.champion > found.challenger
    assert found.difference_interval[1] < 0
    assert "champion stays" in found.reason and "version 1" in found.reason


def test_better_on_the_same_leads_and_than_the_points_is_promoted() -> None:
    lead, y, quality = leads_with_snapshots(400, seed=5)
    rng = np.random.default_rng(1)
    champion = quality + 2.0 * rng.normal(size=len(y))
    challenger = quality + 0.3 * rng.normal(size=len(y))
    points = quality + 3.0 * rng.normal(size=len(y))
    found = decide(SameLeads(lead, y, challenger, points, champion), SETTINGS, "4")
    assert found.decision == "promoted" and found.moves_champion
    low, high = found.difference_interval
    assert 0 < low < found.challenger - found.champion < high
    assert found.n_leads == 400 and found.champion_version == "4"
    assert found.challenger == pytest.approx(roc_auc_score(y, challenger))
    assert found.rules == pytest.approx(roc_auc_score(y, points))


def test_a_difference_within_the_noise_keeps_the_champion() -> None:
    lead, y, quality = leads_with_snapshots(150, seed=6)
    rng = np.random.default_rng(2)
    champion = quality + rng.normal(size=len(y))
    challenger = champion + 0.05 * rng.normal(size=len(y))  # about the same model
    found = decide(SameLeads(lead, y, challenger, quality * 0, champion), SETTINGS, "2")
    low, high = found.difference_interval
    assert low <= 0 <= high and found.decision == "kept"


def test_beating_the_champion_but_not_the_points_keeps_the_champion() -> None:
    lead, y, quality = leads_with_snapshots(400, seed=7)
    rng = np.random.default_rng(3)
    champion = quality + 3.0 * rng.normal(size=len(y))
    challenger = quality + 1.0 * rng.normal(size=len(y))
    points = quality + 0.2 * rng.normal(size=len(y))
    found = decide(SameLeads(lead, y, challenger, points, champion), SETTINGS, "3")
    assert found.difference_interval[0] > 0
    assert found.decision == "kept" and "points" in found.reason


def test_a_first_version_worse_than_the_points_is_never_champion() -> None:
    lead, y, quality = leads_with_snapshots(300, seed=8)
    rng = np.random.default_rng(4)
    constant = np.full(len(y), 0.1)  # a model that learnt nothing
    points = quality + rng.normal(size=len(y))
    found = decide(SameLeads(lead, y, constant, points), SETTINGS, None)
    assert found.decision == "not_promoted" and not found.moves_champion
    assert found.challenger == pytest.approx(0.5) and found.rules > 0.6
    assert "without the champion alias" in found.reason
    assert found.champion is None and found.difference_interval is None


def test_a_first_version_better_than_the_points_is_the_first_champion() -> None:
    lead, y, quality = leads_with_snapshots(300, seed=9)
    rng = np.random.default_rng(5)
    found = decide(SameLeads(lead, y, quality + 0.2 * rng.normal(size=len(y)),
                             quality + 2 * rng.normal(size=len(y))), SETTINGS, None)
    assert found.decision == "first" and found.moves_champion


def test_test_leads_without_converters_stop_the_promotion() -> None:
    lead = np.array(["a", "b", "c", "c"])
    found = decide(SameLeads(lead, np.zeros(4), np.arange(4.0), np.arange(4.0)), SETTINGS,
                   "1")
    assert found.decision == "not_promoted" and found.failure is Failure.NO_CONVERTERS
    assert "no converters" in found.reason and "3 leads" in found.reason


def test_a_champion_that_cannot_score_leaves_promotion_to_the_promote_command() -> None:
    found = champion_unusable("5", "it reads fields the new data no longer has: plan", 80,
                              "roc_auc", "crm")
    assert found.decision == "not_promoted" and found.failure is Failure.CHAMPION_UNUSABLE
    assert "predictive-scoring promote --dataset crm" in found.reason
    assert set(found.block()) == {"champion_version", "challenger_version", "n_leads",
                                  "metric", "champion", "challenger", "rules",
                                  "difference_interval", "decision", "reason"}


def test_settings_refuse_a_metric_the_points_cannot_be_measured_on() -> None:
    from tests.conftest import BASE

    training = BASE.training.model_copy(update={"promotion_metric": "log_loss"})
    with pytest.raises(ValueError, match="roc_auc or pr_auc"):
        PromotionSettings.of(training)


# ------------------------------------------------------------------ the preview
def test_preview_counts_recomputed_lead_by_lead() -> None:
    order = ["subscriber", "lead", "mql", "sql"]
    rng = np.random.default_rng(6)
    before = rng.choice(order, 200)
    after = rng.choice(order, 200)
    y = rng.integers(0, 2, 200)
    found = promotion_preview(y, before, after, order, "mql", "champion version 1",
                              (None, pd.DataFrame({"feature": ["a"], "mean_abs": [1.0]})))
    up = down = sent_before = sent_after = caught_before = caught_after = 0
    for b, a, converted in zip(before, after, y, strict=True):
        up += order.index(a) > order.index(b)
        down += order.index(a) < order.index(b)
        sent_before += b in ("mql", "sql")
        sent_after += a in ("mql", "sql")
        caught_before += converted and b in ("mql", "sql")
        caught_after += converted and a in ("mql", "sql")
    assert (found.moved_up, found.moved_down) == (up, down)
    assert (found.volume_before, found.volume_after) == (sent_before, sent_after)
    assert (found.captured_before, found.captured_after) == (caught_before, caught_after)
    assert found.block()["unchanged"] == 200 - up - down
    assert found.weights.empty  # no weights for the points


def test_weight_moves_rank_fields_by_their_change() -> None:
    before = pd.DataFrame({"feature": ["a", "b", "c"], "mean_abs": [0.5, 0.2, 0.1]})
    after = pd.DataFrame({"feature": ["a", "b", "d"], "mean_abs": [0.1, 0.25, 0.3]})
    moved = weight_moves(before, after, n=3)
    assert moved["feature"].tolist() == ["a", "d", "c"]
    assert moved["change"].tolist() == pytest.approx([-0.4, 0.3, -0.1])


# ------------------------------------------------------------------ the layering
def test_the_workflow_imports_no_command_line_library() -> None:
    """Neither typer (nor click) nor the CLI is loaded by the workflow, and no workflow
    module imports rich (scikit-learn 1.9 loads rich for its own progress bars, so
    ``sys.modules`` cannot tell; the modules' imports are read instead)."""
    code = ("import sys\n"
            "import predictive_scoring.workflow.runs, predictive_scoring.workflow.retrain\n"
            "import predictive_scoring.workflow.reports\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'click') "
            "or m.startswith('predictive_scoring.cli')))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert shown == "[]"
    folder = Path(workflow.__file__).parent
    imported = set()
    for module in folder.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert len(list(folder.glob("*.py"))) >= 8
    assert not imported & {"typer", "rich", "click"}
