"""simulate -> train into a temporary MLflow store -> load @champion -> score, via the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from predictive_scoring.cli import app
from predictive_scoring.tracking import registry

pytestmark = pytest.mark.heavy

runner = CliRunner()
PROMOTION_KEYS = {"champion_version", "challenger_version", "n_leads", "metric", "champion",
                  "challenger", "rules", "difference_interval", "decision", "reason"}
METRIC_KEYS = {"roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_at_10",
               "captured_at_rules_volume"}


def invoke(*args: object, env: dict[str, str]) -> object:
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", **env})
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("train_cli")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db"}
    result = invoke("simulate", "--leads", 5000, "--seed", 5, "--out", root / "sim", env=env)
    assert result.exit_code == 0, result.output
    result = invoke("train", "--config", root / "sim" / "dataset.yaml", "--output",
                    root / "run1", env=env)
    assert result.exit_code == 0, result.output
    decision = json.loads((root / "run1" / "metrics.json").read_text())["promotion"]["decision"]
    if decision != "first":  # below the points: the later tests need a champion, by hand
        assert invoke("promote", "--dataset", "simulated", "--version", 1,
                      env=env).exit_code == 0
    return {"root": root, "env": env, "first": result.output}


def test_train_writes_metrics_json_in_the_documented_shape(store: dict) -> None:
    metrics = json.loads((store["root"] / "run1" / "metrics.json").read_text())
    assert {"dataset", "n_train", "n_test", "positive_rate_test", "model", "rules", "oracle",
            "stages", "warnings"} <= set(metrics)
    for block in ("model", "rules", "oracle"):
        assert set(metrics[block]) >= METRIC_KEYS
    assert set(metrics["stages"]) == {"model", "rules"}
    assert 0.6 < metrics["model"]["roc_auc"] < 1  # quality is tested in tests/unit/test_train
    plots = sorted(p.name for p in (store["root"] / "run1" / "plots").glob("*.png"))
    assert plots == ["calibration.png", "gain.png", "precision_recall.png", "roc.png",
                     "score_distributions.png", "shap_beeswarm.png", "shap_importance.png",
                     "stage_conversion.png"]
    weights = pd.read_csv(store["root"] / "run1" / "global_importance.csv")
    assert weights["mean_abs"].is_monotonic_decreasing
    assert set(weights["group"]) == {"fit", "engagement"}
    assert "Fit vs engagement" in store["first"]
    promotion = metrics["promotion"]
    assert set(promotion) == PROMOTION_KEYS and promotion["champion_version"] is None
    beats_points = promotion["challenger"] > promotion["rules"]
    assert promotion["decision"] == ("first" if beats_points else "not_promoted")
    verdict = "is the new champion (the first)" if beats_points else "is not promoted"
    assert f"version 1: it {verdict}" in store["first"]
    assert promotion["challenger"] == pytest.approx(metrics["model"]["roc_auc"])
    preview = metrics["promotion_preview"]
    assert preview["before"] == "the points" and preview["n"] == metrics["n_test"]
    report = (store["root"] / "run1" / "report.html").read_text(encoding="utf-8")
    assert "Promotion: this model against the one in use" in report
    assert f"{preview['volume_before']:,}" in report


@pytest.fixture(scope="module")
def second(store: dict) -> object:
    """Version 2 (a logistic regression on the same data), trained once for the tests that
    need it, whatever order they run in."""
    result = invoke("train", "--config", store["root"] / "sim" / "dataset.yaml", "--model",
                    "logreg", "--output", store["root"] / "run2", env=store["env"])
    assert result.exit_code == 0, result.output
    return result


def test_second_model_is_compared_with_the_champion_on_the_same_leads(store: dict,
                                                                     second: object) -> None:
    result = second
    first = json.loads((store["root"] / "run1" / "metrics.json").read_text())
    second = json.loads((store["root"] / "run2" / "metrics.json").read_text())
    promotion = second["promotion"]
    assert set(promotion) == PROMOTION_KEYS
    assert promotion["champion_version"] == "1" and promotion["challenger_version"] == "2"
    # the same test leads: the same data and split, so the first model's test leads
    assert promotion["challenger"] == pytest.approx(second["model"]["roc_auc"])
    assert promotion["champion"] == pytest.approx(first["model"]["roc_auc"])
    low, high = promotion["difference_interval"]
    assert low < promotion["challenger"] - promotion["champion"] < high
    promoted = low > 0 and promotion["challenger"] > promotion["rules"]
    assert promotion["decision"] == ("promoted" if promoted else "kept")
    expected = "is the new champion" if promoted else "is the challenger; the champion stays"
    assert f"version 2: it {expected}" in result.output
    assert "Promotion preview" in result.output
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", store["env"]["MLFLOW_TRACKING_URI"])
        assert registry.aliases("lead-scoring-simulated") == {
            "champion": "2" if promoted else "1", "challenger": "2"}


def test_promote_rollback_export_and_score(store: dict, second: object,
                                           tmp_path: Path) -> None:
    env = store["env"]
    result = invoke("promote", "--dataset", "simulated", "--version", 2, env=env)
    assert result.exit_code == 0, result.output
    result = invoke("rollback", "--dataset", "simulated", env=env)
    assert result.exit_code == 0, result.output
    assert "rolled back to version 1" in result.output
    bad = invoke("promote", "--dataset", "simulated", "--version", 99, env=env)
    assert bad.exit_code == 1 and "99" in bad.output
    out = tmp_path / "bundle"
    exported_now = invoke("export", "--dataset", "simulated", "--out", out, env=env)
    assert exported_now.exit_code == 0, exported_now.output
    assert "'lead-scoring-simulated' version 1 (@champion)" in exported_now.output
    sim = store["root"] / "sim"
    scores = tmp_path / "scores.csv"
    result = invoke("score", "--model", out, "--input", sim / "leads.csv", "--events",
                    sim / "events.csv", "--as-of", "2025-08-01T00:00:00Z", "--output", scores,
                    env=env)
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(scores)
    leads = pd.read_csv(sim / "leads.csv", parse_dates=["created_at"])
    assert len(scored) == len(leads)  # every row comes out, scored or with its reason
    late = leads["created_at"] > pd.Timestamp("2025-08-01", tz="UTC")
    assert scored.loc[late.to_numpy(), "error"].eq("created after as_of").all()
    assert scored.loc[~late.to_numpy(), "probability"].between(0, 1).all()
    # the registry's champion scores exactly like the exported folder
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", env["MLFLOW_TRACKING_URI"])
        champion = registry.load_scorer("models:/lead-scoring-simulated@champion")
    exported = registry.load_scorer(out)
    frame = leads.loc[~late].head(50).assign(as_of=pd.Timestamp("2025-08-01", tz="UTC"))
    events = pd.read_csv(sim / "events.csv", parse_dates=["timestamp"])
    pd.testing.assert_frame_equal(champion.score(frame, events), exported.score(frame, events))


def test_score_reports_bad_rows_without_losing_them(store: dict, tmp_path: Path) -> None:
    sim = store["root"] / "sim"
    leads = pd.read_csv(sim / "leads.csv", dtype=str).head(30)
    leads.loc[4, "created_at"] = "sometime"
    leads.loc[9, "employees"] = "many"
    path = tmp_path / "leads.csv"
    leads.to_csv(path, index=False)
    scores = tmp_path / "scores.csv"
    result = invoke("score", "--model", "models:/lead-scoring-simulated@champion", "--input",
                    path, "--output", scores, "--chunk-rows", 7, "--reasons", 2,
                    env=store["env"])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(scores)
    assert len(scored) == 30 and list(scored["lead_id"]) == list(leads["lead_id"])
    explained = ["fit_grade", "engagement", "quadrant", "reason_up_1", "reason_up_2",
                 "reason_down_1", "reason_down_2"]
    assert set(explained) <= set(scored.columns) and scored.columns[-1] == "error"
    good = scored["error"].isna()
    assert scored.loc[good, "fit_grade"].isin(list("ABCD")).all()
    assert scored.loc[good, "reason_up_1"].notna().sum() + scored.loc[
        good, "reason_down_1"].notna().sum() >= good.sum()
    assert scored.loc[~good, explained].isna().all().all()
    assert scored.loc[4, "error"] == "created_at is missing or not a timestamp"
    assert scored.loc[9, "error"] == "employees is not a number"
    assert scored["probability"].notna().sum() == 28
    quarantine = pd.read_csv(tmp_path / "scores.quarantine.csv")
    assert list(quarantine["row"]) == [5, 10]
    assert "28 scored, 2 could not be scored" in result.output


def test_too_little_data_stops_with_advice(tmp_path: Path) -> None:
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    assert invoke("simulate", "--leads", 300, "--out", tmp_path / "s", env=env).exit_code == 0
    result = invoke("train", "--config", tmp_path / "s" / "dataset.yaml", "--output",
                    tmp_path / "o", env=env)
    assert result.exit_code == 1
    assert "too little data" in result.output and "rules" in result.output


def test_tune_logs_a_nested_run_per_trial(store: dict, tmp_path: Path) -> None:
    import mlflow

    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    result = invoke("train", "--config", store["root"] / "sim" / "dataset.yaml", "--model",
                    "logreg", "--tune", 3, "--no-register", "--output", tmp_path / "o", env=env)
    assert result.exit_code == 0, result.output
    assert "Best of 3 trials" in result.output and "not registered" in result.output
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(search_all_experiments=True)
    parents = runs.loc[runs["tags.mlflow.parentRunId"].isna()]
    trials = runs.loc[runs["tags.mlflow.parentRunId"].notna()]
    assert len(parents) == 1 and len(trials) == 3
    assert set(trials["tags.mlflow.parentRunId"]) == {parents["run_id"].iloc[0]}
    assert trials["metrics.valid_log_loss"].notna().all()
    tuned_c = json.loads((tmp_path / "o" / "metrics.json").read_text())["params"]["C"]
    assert float(parents["params.C"].iloc[0]) == pytest.approx(tuned_c)
