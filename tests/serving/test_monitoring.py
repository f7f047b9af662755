"""Monitoring end to end: simulated leads scored through the API at several ``as_of`` with
the prediction log on (SQLite, and PostgreSQL where reachable), then ``monitor`` read
against the simulated funnel's stage changes; the score change on the API; the drift
gauges on ``/metrics``.

Expected numbers are computed here from the dataset and the scorer, independently of the
monitoring package: labels from the stage changes, the offline ROC-AUC from the batch
scorer on the same leads and ``as_of``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from predictive_scoring.cli import app as cli
from predictive_scoring.data.snapshots import data_end_of
from predictive_scoring.stages import FUNNEL, Stage
from serving.app import create_app
from serving.prediction_log import predictions
from tests.serving.conftest import (
    AUTH,
    MODEL_NAME,
    Trained,
    lead_request,
    settings_for,
    wait_ready,
)

HORIZON = pd.Timedelta(days=90)
BATCH = 500


def _dataset_yaml(trained: Trained, folder: Path) -> Path:
    path = folder / "dataset.yaml"
    path.write_text(yaml.safe_dump(trained.config.model_dump(mode="json")))
    return path


def _labels(trained: Trained, leads: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(label, pending) per row: first reach of customer or beyond in [as_of, as_of+90d);
    pending when the horizon passes the end of the data."""
    beyond = {s.value for s in FUNNEL if s.rank >= Stage.CUSTOMER.rank}
    changes = trained.dataset.stage_changes
    first = changes.loc[changes["stage"].isin(beyond)].groupby("lead_id")["timestamp"].min()
    reached = leads["lead_id"].map(first)
    label = ((reached >= leads["as_of"]) & (reached < leads["as_of"] + HORIZON)).to_numpy()
    pending = (leads["as_of"] + HORIZON > data_end_of(trained.dataset)).to_numpy()
    already = (reached < leads["as_of"]).fillna(False).to_numpy()
    return label.astype(int), pending & ~already


def _score_all(client: TestClient, trained: Trained, leads: pd.DataFrame,
               request_id: str | None = None) -> list[dict]:
    events = trained.dataset.events
    events = events.loc[events["lead_id"].isin(leads["lead_id"])]
    results = []
    for start in range(0, len(leads), BATCH):
        body = {"leads": [lead_request(row, events)
                          for _, row in leads.iloc[start:start + BATCH].iterrows()]}
        headers = AUTH | ({"X-Request-ID": request_id} if request_id else {})
        answer = client.post("/v1/score/batch", headers=headers, json=body)
        assert answer.status_code == 200, answer.text
        results += answer.json()["results"]
    return results


def _monitor(log_url: str, config: Path, out: Path, *extra: str) -> dict:
    result = CliRunner().invoke(cli, ["monitor", "--prediction-log", log_url, "--config",
                                      str(config), "--out", str(out), *extra],
                                env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return json.loads((out / "monitoring.json").read_text())


@pytest.fixture(scope="module")
def scored_leads(trained: Trained) -> pd.DataFrame:
    """The held-out leads at their training snapshots (7 and 30 days after creation)
    and, for a quarter of them, 30 days before the end of the data (pending)."""
    leads = trained.leads
    end = data_end_of(trained.dataset)
    late = leads.drop_duplicates("lead_id").iloc[::4]
    late = late.loc[late["created_at"] < end - pd.Timedelta(days=30)].assign(
        as_of=end - pd.Timedelta(days=30))
    return pd.concat([leads, late], ignore_index=True)


@pytest.fixture(scope="module")
def sqlite_log(registry: str, trained: Trained, scored_leads: pd.DataFrame,
               tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The service scores every lead with the log on SQLite; a few planted problems."""
    folder = tmp_path_factory.mktemp("monitoring")
    url = f"sqlite:///{folder}/predictions.db"
    settings = settings_for(registry, prediction_log=True, prediction_log_url=url,
                            prediction_log_spool=folder / "spool")
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        results = _score_all(client, trained, scored_leads)
        stranger = lead_request(scored_leads.iloc[0], trained.dataset.events) | {
            "lead_id": "not-in-the-dataset"}
        assert client.post("/v1/score", json=stranger, headers=AUTH).status_code == 200
        again = scored_leads.head(3)
        _score_all(client, trained, again, "same-request-id")
        _score_all(client, trained, again, "same-request-id")
        metrics = client.get("/metrics").text
    engine = sa.create_engine(url)
    with engine.begin() as connection:  # a version the registry never had
        row = connection.execute(sa.select(predictions).limit(1)).mappings().one()
        connection.execute(predictions.insert(), [{k: v for k, v in row.items() if k != "id"}
                                                  | {"model_version": "99"}])
    engine.dispose()
    return {"url": url, "folder": folder, "results": results, "metrics": metrics}


def test_monitor_matches_an_offline_evaluation_and_counts_pending(
        sqlite_log: dict[str, Any], trained: Trained, scored_leads: pd.DataFrame) -> None:
    config = _dataset_yaml(trained, sqlite_log["folder"])
    report = _monitor(sqlite_log["url"], config, sqlite_log["folder"] / "out")
    # every lead once, and the first three again under one request id (the repeat of
    # that request is the duplicate)
    scored_leads = pd.concat([scored_leads, scored_leads.head(3)], ignore_index=True)
    label, pending = _labels(trained, scored_leads)
    scores = trained.scorer.score(scored_leads, trained.dataset.events)["probability"]
    already = _already(trained, scored_leads)
    matured = ~pending & ~already
    version = f"{MODEL_NAME}/1"
    block = report["by_version"][version]
    assert block["n_pending"] == int(pending.sum()) > 0
    assert block["n_matured"] == int(matured.sum())
    assert block["n_already_converted"] == int(already.sum())
    expected = roc_auc_score(label[matured], scores.to_numpy()[matured])
    assert block["model"]["roc_auc"] == pytest.approx(expected, abs=1e-9)
    # Counting pending scores as losses would change the AUC: they are left out.
    assert roc_auc_score(label[~already], scores.to_numpy()[~already]) != pytest.approx(
        expected, abs=1e-6)
    assert block["rules"]["roc_auc"] is not None
    for key in ("n_scored", "n_matured", "n_pending", "model", "rules", "by_period",
                "drift", "alerts"):
        assert key in report
    assert {"roc_auc", "pr_auc", "ece"} <= set(report["model"])
    problems = report["problems"]
    assert problems["unknown_model_versions"]["versions"] == {f"{MODEL_NAME}/99": 1}
    assert problems["leads_missing_from_dataset"]["examples"] == ["not-in-the-dataset"]
    assert problems["duplicate_request_ids"]["rows"] == 3
    assert report["drift"][version]["available"] is True
    assert report["drift"][f"{MODEL_NAME}/99"]["available"] is False
    assert not [a for a in report["alerts"] if a["kind"] in ("input_drift", "score_drift")
                and a["field"] in ("industry", "company_size", "country", "seniority")]
    page = (sqlite_log["folder"] / "out" / "monitoring.html").read_text()
    assert page.count("data:image/png;base64,") >= 3


def _already(trained: Trained, leads: pd.DataFrame) -> np.ndarray:
    beyond = {s.value for s in FUNNEL if s.rank >= Stage.CUSTOMER.rank}
    changes = trained.dataset.stage_changes
    first = changes.loc[changes["stage"].isin(beyond)].groupby("lead_id")["timestamp"].min()
    return (leads["lead_id"].map(first) < leads["as_of"]).fillna(False).to_numpy()


def test_empty_periods_are_named(sqlite_log: dict[str, Any], trained: Trained) -> None:
    config = _dataset_yaml(trained, sqlite_log["folder"])
    first = trained.leads["as_of"].min()
    since = (first - pd.DateOffset(months=3)).strftime("%Y-%m-01T00:00:00Z")
    report = _monitor(sqlite_log["url"], config, sqlite_log["folder"] / "window",
                      "--since", since)
    assert report["problems"]["empty_periods"]["count"] >= 2
    empty = report["problems"]["empty_periods"]["periods"]
    assert [b["n_scored"] for b in report["by_period"] if b["period"] in empty] == [0] * len(
        empty)


def test_a_shifted_mix_raises_a_drift_alert(registry: str, trained: Trained,
                                            tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shifted.db"
    settings = settings_for(registry, prediction_log=True, prediction_log_url=url,
                            prediction_log_spool=tmp_path / "spool")
    shifted = trained.leads.assign(industry="government")
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        _score_all(client, trained, shifted)
        metrics = client.get("/metrics").text
    report = _monitor(url, _dataset_yaml(trained, tmp_path), tmp_path / "out")
    alerts = [a for a in report["alerts"] if a["kind"] == "input_drift"]
    assert "industry" in {a["field"] for a in alerts}
    industry = next(f for f in report["drift"][f"{MODEL_NAME}/1"]["inputs"]
                    if f["field"] == "industry")
    assert industry["psi"] > 0.25
    assert "scoring_score_psi" in metrics


def test_metrics_show_the_drift_gauges(sqlite_log: dict[str, Any]) -> None:
    metrics = sqlite_log["metrics"]
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines()
              if line.startswith(("scoring_score_psi", "scoring_unknown_category_share",
                                  "scoring_model_age_days", "scoring_drift_window_leads"))}
    assert set(values) == {"scoring_score_psi", "scoring_unknown_category_share",
                           "scoring_model_age_days", "scoring_drift_window_leads"}
    assert values["scoring_drift_window_leads"] > 0
    assert 0 <= values["scoring_score_psi"] < 0.25
    assert values["scoring_unknown_category_share"] == 0
    assert 0 <= values["scoring_model_age_days"] < 1


def test_the_log_keeps_bins_fit_and_engagement(sqlite_log: dict[str, Any],
                                              trained: Trained) -> None:
    engine = sa.create_engine(sqlite_log["url"])
    with engine.connect() as connection:
        rows = connection.execute(sa.select(predictions).limit(50)).mappings().all()
    engine.dispose()
    fields = trained.scorer.metadata["monitoring"]["fields"]
    assert all(len(row["input_bins"]) == len(fields) for row in rows)
    assert {row["fit_grade"] for row in rows} <= {"A", "B", "C", "D"}
    assert {row["quadrant"] for row in rows} <= {"sales-ready", "nurture", "check fit",
                                                 "low priority"}
    answered = [r for r in sqlite_log["results"] if r["status"] == "scored"][:len(rows)]
    assert [row["fit_grade"] for row in rows] == [r["fit_grade"] for r in answered]
    assert [row["engagement"] for row in rows] == [r["engagement"] for r in answered]


def test_the_score_change_adds_up_to_the_difference(client: TestClient,
                                                    requests_json: list[dict]) -> None:
    lead = requests_json[0]
    created = pd.Timestamp(lead["created_at"]).tz_convert("UTC")
    moments = [(created + pd.Timedelta(days=d)).isoformat() for d in (2, 45)]
    answer = client.post("/v1/score/change", headers=AUTH, json={
        "lead": lead, "from_as_of": moments[0], "to_as_of": moments[1]})
    assert answer.status_code == 200, answer.text
    change = answer.json()
    scores = [client.post("/v1/score", headers=AUTH, json=lead | {"as_of": moment}).json()
              for moment in moments]
    assert change["from"]["probability"] == pytest.approx(scores[0]["probability"], abs=1e-12)
    assert change["to"]["probability"] == pytest.approx(scores[1]["probability"], abs=1e-12)
    assert change["score_change"] == pytest.approx(
        100 * (scores[1]["probability"] - scores[0]["probability"]), abs=1e-9)
    assert sum(c["effect"] for c in change["changes"]) == pytest.approx(
        change["score_change"], abs=1e-9)
    assert change["changes"] and all(c["sentence"].endswith(
        ("+", "-", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9")) for c in change["changes"])


def test_a_score_change_before_the_lead_existed_is_refused(
        client: TestClient, requests_json: list[dict]) -> None:
    lead = requests_json[0]
    created = pd.Timestamp(lead["created_at"])
    answer = client.post("/v1/score/change", headers=AUTH, json={
        "lead": lead, "from_as_of": (created - pd.Timedelta(days=1)).isoformat(),
        "to_as_of": (created + pd.Timedelta(days=1)).isoformat()})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "lead", "created_at"]
    assert "from_as_of" in answer.json()["detail"][0]["msg"]


def test_monitor_reads_a_postgresql_log(registry: str, trained: Trained, postgres_url: str,
                                        scored_leads: pd.DataFrame, tmp_path: Path) -> None:
    leads = scored_leads.iloc[::3].reset_index(drop=True)
    settings = settings_for(registry, prediction_log=True, prediction_log_url=postgres_url,
                            prediction_log_spool=tmp_path / "spool")
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        _score_all(client, trained, leads)
    report = _monitor(postgres_url, _dataset_yaml(trained, tmp_path), tmp_path / "out")
    label, pending = _labels(trained, leads)
    already = _already(trained, leads)
    matured = ~pending & ~already
    probability = trained.scorer.score(leads, trained.dataset.events)["probability"]
    assert (report["n_scored"], report["n_pending"], report["n_matured"]) == (
        len(leads), int(pending.sum()), int(matured.sum()))
    assert report["model"]["roc_auc"] == pytest.approx(
        roc_auc_score(label[matured], probability.to_numpy()[matured]), abs=1e-9)
    assert report["drift"][f"{MODEL_NAME}/1"]["rows_with_bins"] == len(leads)


def test_score_change_command_agrees_with_the_api(client: TestClient, trained: Trained,
                                                  requests_json: list[dict],
                                                  tmp_path: Path) -> None:
    lead = requests_json[1]
    own = trained.leads.loc[trained.leads["lead_id"] == lead["lead_id"]].head(1)
    own.drop(columns=["as_of"]).to_csv(tmp_path / "leads.csv", index=False)
    events = trained.dataset.events
    events.loc[events["lead_id"] == lead["lead_id"]].drop(columns="_row").to_csv(
        tmp_path / "events.csv", index=False)
    created = own["created_at"].iloc[0]
    moments = [(created + pd.Timedelta(days=d)).isoformat() for d in (3, 60)]
    result = CliRunner().invoke(cli, [
        "score-change", "--model", f"models:/{MODEL_NAME}/1", "--input",
        str(tmp_path / "leads.csv"), "--events", str(tmp_path / "events.csv"), "--lead",
        lead["lead_id"], "--from", moments[0], "--to", moments[1], "--out",
        str(tmp_path / "change.json")], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "change.json").read_text())
    api = client.post("/v1/score/change", headers=AUTH, json={
        "lead": lead, "from_as_of": moments[0], "to_as_of": moments[1]}).json()
    assert written["score_change"] == pytest.approx(api["score_change"], abs=1e-9)
    assert sum(c["effect"] for c in written["changes"]) == pytest.approx(
        written["score_change"], abs=1e-9)
    assert [c["sentence"] for c in written["changes"]] == [
        c["sentence"] for c in api["changes"]]
    assert written["changes"][0]["sentence"] in result.output
