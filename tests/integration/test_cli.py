"""The command line end to end on small simulated data, and on broken copies of it."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from predictive_scoring.cli import app

runner = CliRunner()
ENV = {"COLUMNS": "240", "NO_COLOR": "1"}


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> object:
    result = runner.invoke(app, [str(a) for a in args], env={**ENV, **(env or {})})
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    result = invoke("simulate", "--leads", 600, "--seed", 3, "--out", out)
    assert result.exit_code == 0, result.output
    return out


def copy_of(simulated: Path, tmp_path: Path) -> Path:
    """A private copy of the simulated files with its own dataset.yaml."""
    target = tmp_path / "copy"
    shutil.copytree(simulated, target)
    config = (target / "dataset.yaml").read_text().replace(f"root: {simulated}",
                                                           f"root: {target}")
    (target / "dataset.yaml").write_text(config)
    return target


def test_simulate_writes_the_contract_files(simulated: Path) -> None:
    leads = pd.read_csv(simulated / "leads.csv")
    assert len(leads) == 600
    for name in ("events", "stage_changes", "truth"):
        assert (simulated / f"{name}.csv").stat().st_size > 0
    assert f"root: {simulated}" in (simulated / "dataset.yaml").read_text()


def test_crm_layout_reads_with_the_example_config(tmp_path: Path) -> None:
    out = tmp_path / "crm"
    assert invoke("simulate", "--leads", 800, "--layout", "crm", "--out", out).exit_code == 0
    contacts = pd.read_csv(out / "contacts.csv")
    assert {"hs_object_id", "createdate", "hs_seniority"} <= set(contacts.columns)
    assert "MEETING_BOOKED" in set(pd.read_csv(out / "activities.csv")["activity_type"])
    assert "example_crm_export" in (out / "dataset.yaml").read_text()
    result = invoke("validate", "--config", out / "dataset.yaml")
    assert result.exit_code == 0, result.output  # every row kept, DST hours included
    scored = tmp_path / "points.csv"
    result = invoke("rules", "--config", out / "dataset.yaml", "--output", scored)
    assert result.exit_code == 0, result.output
    fired = pd.read_csv(scored)["fired_rules"].dropna()
    assert fired.str.contains("meeting_booked").any()
    assert fired.str.contains("senior_buyer").any()


def test_crm_layout_is_csv_only(tmp_path: Path) -> None:
    result = invoke("simulate", "--leads", 50, "--layout", "crm", "--format", "parquet",
                    "--out", tmp_path)
    assert result.exit_code == 1 and "writes CSV files" in result.output


def test_validate_prints_counts(simulated: Path) -> None:
    result = invoke("validate", "--config", simulated / "dataset.yaml")
    assert result.exit_code == 0, result.output
    assert "kept" in result.output and "quarantined" in result.output
    assert "600" in result.output


def test_rules_scores_every_lead(simulated: Path, tmp_path: Path) -> None:
    output = tmp_path / "scored.csv"
    result = invoke("rules", "--config", simulated / "dataset.yaml", "--output", output)
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(output)
    assert len(scored) == 600 and scored["lead_id"].is_unique
    assert set(scored.columns) >= {"lead_id", "as_of", "rule_points", "rule_stage",
                                   "fired_rules"}
    assert set(scored["rule_stage"]) <= {"subscriber", "lead", "mql", "sql", "opportunity"}
    assert scored["rule_points"].nunique() > 5


def test_rules_as_of_leaves_out_leads_not_yet_created(simulated: Path, tmp_path: Path) -> None:
    leads = pd.read_csv(simulated / "leads.csv", parse_dates=["created_at"])
    middle = leads["created_at"].sort_values().iloc[300]
    output = tmp_path / "scored.parquet"
    result = invoke("rules", "--config", simulated / "dataset.yaml", "--output", output,
                    "--as-of", middle.isoformat())
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(output)
    assert len(scored) == int((leads["created_at"] <= middle).sum())
    assert f"{600 - len(scored)} leads created after" in result.output


def test_funnel_prints_headline_rates(simulated: Path) -> None:
    result = invoke("funnel", "--config", simulated / "dataset.yaml")
    assert result.exit_code == 0, result.output
    for text in ("lead to mql", "mql to sql", "sql to won", "opportunity", "customer"):
        assert text in result.output


def test_quickstart_runs_end_to_end(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/mlflow.db"
    result = invoke("quickstart", "--leads", 3000, "--out", tmp_path / "qs",
                    env={"MLFLOW_TRACKING_URI": store})
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "qs" / "rule_scores.csv")) == 3000
    assert (tmp_path / "qs" / "data" / "dataset.yaml").exists()
    metrics = json.loads((tmp_path / "qs" / "metrics.json").read_text())
    # champion only when it beats the points on its test leads; else the challenger
    first = metrics["promotion"]["decision"] == "first"
    assert first == (metrics["promotion"]["challenger"] > metrics["promotion"]["rules"])
    alias = "champion" if first else "challenger"
    verdict = "is the new champion" if first else "is not promoted"
    assert f"version 1: it {verdict}" in result.output
    assert store in result.output
    # it ends by naming the report, the model and what to run next, with paths that exist
    assert f"The comparison report is {tmp_path / 'qs' / 'report.html'}" in result.output
    assert (tmp_path / "qs" / "report.html").is_file()
    assert f"the model is models:/lead-scoring-simulated@{alias} (version 1)" in result.output
    lines = result.output[result.output.index("Next:"):].splitlines()[1:4]
    uri = f"--model models:/lead-scoring-simulated@{alias}"
    assert [("predictive-scoring " + c) in line and uri in line for c, line in
            zip(("score", "serve", "report"), lines, strict=True)] == [True] * 3
    # the printed score command works as printed and scores every simulated lead
    score_args = shlex.split(lines[0])[1:]
    scored = invoke(*score_args, env={"MLFLOW_TRACKING_URI": store})
    assert scored.exit_code == 0, scored.output
    scores = pd.read_csv(tmp_path / "qs" / "scores.csv")
    assert len(scores) == 3000 and scores["error"].isna().all()


# ------------------------------------------------------------------ broken input
def test_missing_column_is_a_clear_error(simulated: Path, tmp_path: Path) -> None:
    root = copy_of(simulated, tmp_path)
    events = pd.read_csv(root / "events.csv").rename(columns={"event_type": "activity"})
    events.to_csv(root / "events.csv", index=False)
    result = invoke("validate", "--config", root / "dataset.yaml")
    assert result.exit_code == 1
    assert "events.csv" in result.output and "'event_type'" in result.output
    assert "activity" in result.output


def _break_rows(root: Path) -> int:
    events = pd.read_csv(root / "events.csv", dtype=str)
    n_events = len(events)
    events.loc[3, "timestamp"] = "last tuesday"
    events.loc[7, "lead_id"] = "NOBODY"
    events.to_csv(root / "events.csv", index=False)
    changes = pd.read_csv(root / "stage_changes.csv", dtype=str)
    changes.loc[0, "stage"] = "hot_lead"
    changes.to_csv(root / "stage_changes.csv", index=False)
    return n_events


def test_bad_rows_fail_by_default_naming_row_column_value(simulated: Path,
                                                          tmp_path: Path) -> None:
    root = copy_of(simulated, tmp_path)
    _break_rows(root)
    result = invoke("validate", "--config", root / "dataset.yaml")
    assert result.exit_code == 1
    assert "3 problem(s)" in result.output
    assert "row 4, column 'timestamp', value 'last tuesday'" in result.output
    assert "row 8, column 'lead_id', value 'NOBODY': unknown lead_id" in result.output
    assert "row 1, column 'stage', value 'hot_lead': unknown stage name" in result.output
    assert "--on-bad-rows quarantine" in result.output


def test_quarantine_goes_on_with_the_rest(simulated: Path, tmp_path: Path) -> None:
    root = copy_of(simulated, tmp_path)
    n_events = _break_rows(root)
    out = tmp_path / "scored.csv"
    result = invoke("rules", "--config", root / "dataset.yaml", "--output", out,
                    "--on-bad-rows", "quarantine")
    assert result.exit_code == 0, result.output
    quarantine = tmp_path / "quarantine"
    events_q = pd.read_csv(quarantine / "events.quarantine.csv")
    assert sorted(events_q["row"]) == [4, 8]
    assert len(pd.read_csv(quarantine / "stage_changes.quarantine.csv")) == 1
    assert len(pd.read_csv(quarantine / "problems.csv")) == 3
    assert f"{n_events:,}" in result.output and f"{n_events - 2:,}" in result.output
    assert len(pd.read_csv(out)) == 600


def test_bad_config_names_the_key(simulated: Path, tmp_path: Path) -> None:
    root = copy_of(simulated, tmp_path)
    text = (root / "dataset.yaml").read_text().replace("horizon_days: 90", "horizon_days: -3")
    (root / "dataset.yaml").write_text(text)
    result = invoke("validate", "--config", root / "dataset.yaml")
    assert result.exit_code == 2
    assert "snapshots.horizon_days" in result.output and "greater than 0" in result.output


def test_rules_referring_to_a_missing_field(simulated: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("name: custom\nattribute_rules:\n"
                     "  - {name: big, field: revenue, op: gt, value: 10, points: 5}\n"
                     "stage_thresholds: {lead: 1, mql: 5}\n")
    result = invoke("rules", "--config", simulated / "dataset.yaml", "--rules", rules,
                    "--output", tmp_path / "x.csv")
    assert result.exit_code == 1
    assert "revenue" in result.output and "big" in result.output


def test_bad_as_of(simulated: Path, tmp_path: Path) -> None:
    result = invoke("rules", "--config", simulated / "dataset.yaml", "--output",
                    tmp_path / "x.csv", "--as-of", "soon")
    assert result.exit_code == 1 and "--as-of 'soon' is not a timestamp" in result.output


def test_funnel_needs_the_events_shape(tmp_path: Path) -> None:
    (tmp_path / "crm.csv").write_text("id,won\n1,yes\n2,no\n")
    config = tmp_path / "crm.yaml"
    config.write_text(f"name: crm\nshape: table\nroot: {tmp_path}\n"
                      "table: {file: crm.csv, id_column: id, target: won}\n"
                      "rules: configs/rules/olist_points.yaml\n")
    result = invoke("funnel", "--config", config)
    assert result.exit_code == 1 and "needs an events-shaped dataset" in result.output


def test_missing_dataset_file(tmp_path: Path) -> None:
    result = invoke("validate", "--config", tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "nope.yaml" in result.output
