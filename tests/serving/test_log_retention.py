"""The prediction log keeps each lead's input bins for their retention, then clears them
(the scores stay); rows spooled by an older version, without the new columns, are
written all the same."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from serving.observability import Metrics
from serving.prediction_log import SUFFIX, PredictionLog, create_log_engine, predictions


def _row(lead_id: str, scored_at: datetime, bins: str | None) -> dict:
    return {"scored_at": scored_at, "request_id": "r1", "lead_id": lead_id, "as_of": None,
            "probability": 0.5, "score": 50, "suggested_stage": "mql", "rule_points": 16.0,
            "rule_stage": "mql", "model_name": "m", "model_version": "1", "fit_grade": "A",
            "engagement": "hot", "quadrant": "sales-ready", "input_bins": bins}


def _wait_for(url: str, rows: int, done: Callable[[list], bool] = lambda found: True
              ) -> list:
    engine = sa.create_engine(url)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            try:
                with engine.connect() as connection:
                    found = connection.execute(sa.select(predictions).order_by(
                        predictions.c.id)).mappings().all()
            except sa.exc.OperationalError:  # the writer has not made the table yet
                found = []
            if len(found) >= rows and done(found):
                return found
            time.sleep(0.05)
    finally:
        engine.dispose()
    pytest.fail(f"fewer than {rows} rows after 30 s")


def test_bins_past_their_retention_are_cleared_and_scores_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/log.db"
    engine = create_log_engine(url)
    with engine.begin() as connection:
        connection.execute(predictions.insert(), [
            _row("old", datetime.now(UTC) - timedelta(days=3), "0A.")])
    engine.dispose()
    prediction_log = PredictionLog(url, tmp_path / "spool", Metrics(), bins_days=2)
    prediction_log.add([_row("new", datetime.now(UTC), "1B?")])
    # the writer writes the new row and clears the old bins in either order
    rows = _wait_for(url, 2, lambda found: found[0]["input_bins"] is None)
    prediction_log.close()
    assert [(r["lead_id"], r["input_bins"], r["probability"]) for r in rows] == [
        ("old", None, 0.5), ("new", "1B?", 0.5)]


def test_rows_spooled_without_the_new_columns_are_written(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/log.db"
    spool = tmp_path / "spool"
    spool.mkdir()
    old = {k: v for k, v in _row("before", datetime.now(UTC), None).items()
           if k not in ("fit_grade", "engagement", "quadrant", "input_bins")}
    (spool / f"1-1{SUFFIX}").write_bytes(orjson.dumps(old) + b"\n")  # a dead worker's
    prediction_log = PredictionLog(url, spool, Metrics())
    prediction_log.add([_row("after", datetime.now(UTC), "00")])
    rows = _wait_for(url, 2)
    prediction_log.close()
    assert {r["lead_id"]: r["fit_grade"] for r in rows} == {"before": None, "after": "A"}
