"""Accounts from the command line: ``simulate`` writes them by default, ``train`` learns
the account model into the same bundle with an ``accounts`` block in metrics.json and a
report section, and ``score --accounts`` writes one row per account."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from predictive_scoring.cli import app

pytestmark = pytest.mark.heavy

runner = CliRunner()


def invoke(*args: object, env: dict[str, str]) -> object:
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", **env})
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("accounts_cli")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db"}
    result = invoke("simulate", "--leads", 16_000, "--seed", 9, "--out", root / "sim", env=env)
    assert result.exit_code == 0, result.output
    result = invoke("train", "--config", root / "sim" / "dataset.yaml", "--model", "logreg",
                    "--output", root / "run", env=env)
    assert result.exit_code == 0, result.output
    return {"root": root, "env": env, "output": result.output}


def test_simulate_writes_accounts_and_their_truth(trained: dict) -> None:
    sim = trained["root"] / "sim"
    leads = pd.read_csv(sim / "leads.csv")
    accounts = pd.read_csv(sim / "accounts.csv")
    assert {"account_id", "buying_role"} <= set(leads.columns)
    assert set(leads["account_id"]) == set(accounts["account_id"])
    truth = pd.read_csv(sim / "account_truth.csv")
    assert {"account_id", "as_of", "true_probability", "converted"} <= set(truth.columns)


def test_train_reports_the_accounts(trained: dict) -> None:
    metrics = json.loads((trained["root"] / "run" / "metrics.json").read_text())
    block = metrics["accounts"]
    assert {"n_test", "model_roc_auc", "rules_roc_auc", "oracle_roc_auc", "ece"} <= set(block)
    assert block["rules_roc_auc"] == max(block["points_sum_roc_auc"],
                                         block["points_max_roc_auc"])
    assert block["model_roc_auc"] > block["rules_roc_auc"]
    assert "Accounts (" in trained["output"]
    report = (trained["root"] / "run" / "report.html").read_text()
    assert "Accounts: scores from their contacts" in report


def test_score_writes_one_row_per_account(trained: dict, tmp_path: Path) -> None:
    sim = trained["root"] / "sim"
    leads = pd.read_csv(sim / "leads.csv").tail(400)
    leads.loc[leads.index[:7], "account_id"] = None
    leads.to_csv(tmp_path / "leads.csv", index=False)
    result = invoke("score", "--model", "models:/lead-scoring-simulated@champion", "--input",
                    tmp_path / "leads.csv", "--events", sim / "events.csv", "--as-of",
                    "2026-01-20T00:00:00Z", "--output", tmp_path / "scores.csv",
                    "--accounts", tmp_path / "accounts.csv", env=trained["env"])
    assert result.exit_code == 0, result.output
    accounts = pd.read_csv(tmp_path / "accounts.csv")
    with_id = leads.loc[leads["account_id"].notna()]
    assert sorted(accounts["account_id"]) == sorted(with_id["account_id"].unique())
    assert accounts["n_contacts"].sum() == len(with_id)
    assert {"score", "suggested_stage", "points_sum", "points_max", "top_contact_1",
            "top_contact_1_reasons", "missing_roles"} <= set(accounts.columns)
    assert "7 of 400 leads have no account id" in " ".join(result.output.split())
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert len(scores) == 400 and scores["reason_up_1"].notna().any()


def test_a_model_without_accounts_refuses_the_option(tmp_path: Path) -> None:
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    sim = tmp_path / "sim"
    assert invoke("simulate", "--leads", 1500, "--seed", 9, "--out", sim,
                  env=env).exit_code == 0
    config = (sim / "dataset.yaml").read_text()
    start = config.index("accounts:")
    (tmp_path / "plain.yaml").write_text(config[:start] + config[config.index("rules:"):])
    result = invoke("train", "--config", tmp_path / "plain.yaml", "--model", "logreg",
                    "--output", tmp_path / "run", env=env)
    assert result.exit_code == 0, result.output
    assert "accounts" not in json.loads((tmp_path / "run" / "metrics.json").read_text())
    result = invoke("score", "--model", "models:/lead-scoring-simulated@champion", "--input",
                    sim / "leads.csv", "--events", sim / "events.csv", "--output",
                    tmp_path / "scores.csv", "--accounts", tmp_path / "accounts.csv", env=env)
    assert result.exit_code == 2 and "no account model" in result.output


def test_the_report_of_a_registered_model_has_the_accounts(trained: dict,
                                                          tmp_path: Path) -> None:
    result = invoke("report", "--model", "models:/lead-scoring-simulated/1", "--config",
                    trained["root"] / "sim" / "dataset.yaml", "--out",
                    tmp_path / "report.html", env=trained["env"])
    assert result.exit_code == 0, result.output
    assert "Accounts: scores from their contacts" in (tmp_path / "report.html").read_text()
