"""The prediction log on SQLite and on the PostgreSQL server at 127.0.0.1 (a fresh database
per run, dropped after; skipped with the reason where PostgreSQL is not reachable)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.prediction_log import PredictionLog, predictions
from tests.integration.conftest import PG_HOST, PG_PORT, _admin_user, _run_sql
from tests.serving.conftest import AUTH, MODEL_NAME, settings_for, wait_ready


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new database on the local PostgreSQL server, dropped at the end."""
    psycopg = pytest.importorskip("psycopg", reason="PostgreSQL tests need psycopg[binary]")
    user = _admin_user(psycopg)
    database = f"predictions_test_{uuid.uuid4().hex[:12]}"
    _run_sql(psycopg, user, f"CREATE DATABASE {database}")
    try:
        yield f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{database}"
    finally:
        _run_sql(psycopg, user, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


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


def test_every_score_is_logged_with_rules_points_and_model_version(
        log_url: str, registry: str, requests_json: list[dict]) -> None:
    settings = settings_for(registry, prediction_log=True, prediction_log_url=log_url)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        batch = client.post("/v1/score/batch", headers=AUTH, json={
            "leads": [*requests_json[:25], {"lead_id": "broken", "created_at": "never"}]}
        ).json()
        single = client.post("/v1/score", json=requests_json[30], headers=AUTH).json()
    rows = _rows(log_url)  # the app's shutdown flushed the queue
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


def test_a_database_outage_drops_and_counts_rows_without_failing(tmp_path: Path) -> None:
    counted: dict[str, int] = {}
    log = PredictionLog(f"sqlite:///{tmp_path}/predictions.db",
                        lambda outcome, n: counted.update({outcome: counted.get(outcome, 0) + n}))
    row = {"scored_at": datetime.now(UTC), "request_id": "r1", "lead_id": "L1",
           "as_of": None, "probability": 0.5, "score": 50, "suggested_stage": "mql",
           "rule_points": 16.0, "rule_stage": "mql", "model_name": "m", "model_version": "1"}
    log.add([row, row | {"lead_id": "L2"}])
    log.close()
    assert counted == {"written": 2}
    broken = PredictionLog(f"sqlite:///{tmp_path}/other.db", lambda outcome, n: counted.update(
        {outcome: counted.get(outcome, 0) + n}))
    with broken.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE lead_predictions"))
    broken.add([row])
    broken.close()
    assert counted == {"written": 2, "dropped": 1}
