"""The prediction log on SQLite and on the PostgreSQL server at 127.0.0.1 (a fresh database
per test, dropped after; skipped with the reason where PostgreSQL is not reachable): every
score answered is logged once, only what was answered, and a database that is down only
makes the spool grow."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.observability import Metrics
from serving.prediction_log import SUFFIX, PredictionLog, predictions
from tests.serving.conftest import (
    AUTH,
    MODEL_NAME,
    PostgresDatabase,
    settings_for,
    wait_ready,
)

WAIT_SECONDS = 30


@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/nested/predictions.db"
    return request.getfixturevalue("postgres_url")


def _rows(url: str) -> list[Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.select(predictions).order_by(predictions.c.id)).mappings().all()
    finally:
        engine.dispose()


def _row(lead_id: str) -> dict[str, Any]:
    return {"scored_at": datetime.now(UTC), "request_id": "r1", "lead_id": lead_id,
            "as_of": None, "probability": 0.5, "score": 50, "suggested_stage": "mql",
            "rule_points": 16.0, "rule_stage": "mql", "model_name": "m", "model_version": "1"}


def _until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} after {WAIT_SECONDS} s")
        time.sleep(0.05)


def test_every_score_is_logged_with_rules_points_and_model_version(
        log_url: str, registry: str, requests_json: list[dict], tmp_path: Path) -> None:
    settings = settings_for(registry, prediction_log=True, prediction_log_url=log_url,
                            prediction_log_spool=tmp_path / "spool")
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        batch = client.post("/v1/score/batch", headers=AUTH, json={
            "leads": [*requests_json[:25], {"lead_id": "broken", "created_at": "never"}]}
        ).json()
        single = client.post("/v1/score", json=requests_json[30], headers=AUTH).json()
    rows = _rows(log_url)  # the app's shutdown wrote the spool
    scored = [r for r in batch["results"] if r["status"] == "scored"]
    assert len(rows) == len(scored) + 1 == 26
    assert [row["lead_id"] for row in rows] == [r["lead_id"] for r in scored] + [
        single["lead_id"]]
    assert [row["probability"] for row in rows[:25]] == [r["probability"] for r in scored]
    assert [row["score"] for row in rows[:25]] == [r["score"] for r in scored]
    assert [row["rule_points"] for row in rows[:25]] == [r["rules"]["points"] for r in scored]
    assert [row["rule_stage"] for row in rows[:25]] == [r["rules"]["stage"] for r in scored]
    assert {(row["model_name"], row["model_version"]) for row in rows} == {(MODEL_NAME, "1")}
    assert {row["request_id"] for row in rows[:25]} == {batch["request_id"]}
    assert rows[25]["request_id"] == single["request_id"]
    as_of = rows[0]["as_of"]
    as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)  # SQLite keeps no zone
    assert as_of == datetime.fromisoformat(scored[0]["as_of"])
    assert list((tmp_path / "spool").glob(f"*{SUFFIX}")) == []  # all written: removed


def test_the_log_holds_only_what_was_answered(registry: str, requests_json: list[dict],
                                              tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/predictions.db"
    settings = settings_for(registry, prediction_log=True, prediction_log_url=url,
                            prediction_log_spool=tmp_path / "spool")
    huge_category = json.dumps(requests_json[0]).replace(
        '"industry": ', f'"industry": {2**64}, "was": ').encode()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        wait_ready(client)
        refused = client.post("/v1/score", content=huge_category, headers=AUTH)
        batch = client.post("/v1/score/batch", headers=AUTH, content=b'{"leads": [' +
                            huge_category + b", " + json.dumps(requests_json[1]).encode()
                            + b"]}").json()
        model = client.app.state.slot.current
        answers = type(model).answers

        def unencodable(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
            return [result | {"engagement": object()}  # orjson cannot write it
                    for result in answers(*args, **kwargs)]

        monkeypatch.setattr(type(model), "answers", unencodable)
        failed = client.post("/v1/score", json=requests_json[2], headers=AUTH)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "attributes", "industry"]
    assert failed.status_code == 500
    assert [r["status"] for r in batch["results"]] == ["error", "scored"]
    assert [row["lead_id"] for row in _rows(url)] == [requests_json[1]["lead_id"]]


def test_a_database_down_at_start_spools_and_catches_up(
        postgres_database: PostgresDatabase, registry: str, requests_json: list[dict],
        tmp_path: Path) -> None:
    settings = settings_for(registry, prediction_log=True,
                            prediction_log_url=postgres_database.url,
                            prediction_log_spool=tmp_path / "spool")
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        answers = [client.post("/v1/score", json=lead, headers=AUTH)
                   for lead in requests_json[:10]]
        ready = client.get("/ready").json()
        metrics = client.get("/metrics").text
        assert {answer.status_code for answer in answers} == {200}
        assert ready["status"] == "ready"
        assert ready["prediction_log"]["status"] == "spooling"
        assert ready["prediction_log"]["pending_rows"] == 10
        assert "does not exist" in ready["prediction_log"]["reason"]
        assert "scoring_prediction_log_pending_rows 10.0" in metrics
        assert 'scoring_prediction_log_rows_total{outcome="spooled"} 10.0' in metrics

        postgres_database.create()  # the database comes back
        _until(lambda: client.get("/ready").json()["prediction_log"]["status"] == "writing",
               "the log did not catch up")
        assert client.get("/ready").json()["prediction_log"]["pending_rows"] == 0
    rows = _rows(postgres_database.url)
    assert sorted((row["request_id"], row["lead_id"]) for row in rows) == sorted(
        (answer.json()["request_id"], answer.json()["lead_id"]) for answer in answers)


def test_a_dead_workers_spool_is_replayed_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/predictions.db"
    spool = tmp_path / "spool"
    spool.mkdir()
    # a worker killed mid-write: two whole rows and a last one it never finished (and so
    # never answered)
    lines = [orjson.dumps(_row(lead_id)) for lead_id in ("L1", "L2", "L3")]
    (spool / f"1-1{SUFFIX}").write_bytes(lines[0] + b"\n" + lines[1] + b"\n" + lines[2][:40])
    metrics = Metrics()
    first = PredictionLog(url, spool, metrics)
    first.add([_row("L4")])
    _until(lambda: first.status()["status"] == "writing" and first.pending == 0,
           "the log did not write")
    first.close()
    second = PredictionLog(url, spool, Metrics())  # replays nothing twice
    second.close()
    assert sorted(row["lead_id"] for row in _rows(url)) == ["L1", "L2", "L4"]
    assert metrics.registry.get_sample_value("scoring_prediction_log_rows_total",
                                             {"outcome": "replayed"}) == 2
    assert metrics.registry.get_sample_value("scoring_prediction_log_rows_total",
                                             {"outcome": "written"}) == 1


def test_rows_the_database_refuses_are_set_aside_with_the_reason(tmp_path: Path,
                                                                 postgres_url: str) -> None:
    spool = tmp_path / "spool"
    metrics = Metrics()
    prediction_log = PredictionLog(postgres_url, spool, metrics)
    prediction_log.add([_row("L1"), _row("L" * 300), _row("L3")])  # lead_id over 256
    prediction_log.close()
    assert [row["lead_id"] for row in _rows(postgres_url)] == ["L1", "L3"]
    rejected = [orjson.loads(line) for line in (spool / "rejected.jsonl").read_bytes()
                .splitlines()]
    assert [entry["row"]["lead_id"] for entry in rejected] == ["L" * 300]
    assert rejected[0]["reason"]
    assert metrics.registry.get_sample_value("scoring_prediction_log_rows_total",
                                             {"outcome": "rejected"}) == 1
