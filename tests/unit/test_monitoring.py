"""The monitoring package on hand-made data: the reference's bins, the bin strings, the
population stability index, matured vs pending outcomes, periods, and the log read back
from a table written before the monitoring columns existed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from predictive_scoring.config import MonitoringConfig
from predictive_scoring.monitoring import drift, log, metrics, outcomes, reference
from predictive_scoring.stages import Stage
from serving.prediction_log import ADDED_COLUMNS, create_log_engine

RNG = np.random.default_rng(11)


def _features(n: int, industry_mix: dict[str, float], rng: np.random.Generator
              ) -> pd.DataFrame:
    names, shares = zip(*industry_mix.items(), strict=True)
    industry = rng.choice(names, size=n, p=shares).astype(object)
    industry[rng.random(n) < 0.05] = None
    employees = rng.lognormal(3, 1, n)
    employees[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"industry": industry, "employees": employees})


MIX = {"software": 0.5, "retail": 0.3, "education": 0.2}


@pytest.fixture(scope="module")
def ref() -> dict:
    training = _features(5000, MIX, RNG)
    return reference.training_reference(training, ["industry"], RNG.random(5000),
                                        {"trained_at": "2025-01-01T00:00:00+00:00",
                                         "data_end": "2024-12-01T00:00:00+00:00",
                                         "target_stage": "customer", "horizon_days": 90})


def test_the_reference_holds_each_inputs_bins_and_shares(ref: dict) -> None:
    industry, employees = ref["fields"]
    assert industry["categories"] == ["software", "retail", "education"]
    assert sum(industry["shares"]) + industry["missing"] == pytest.approx(1)
    assert industry["missing"] == pytest.approx(0.05, abs=0.01)
    assert len(employees["edges"]) == 9  # deciles of a continuous number
    assert employees["missing"] == pytest.approx(0.1, abs=0.015)
    known = 1 - employees["missing"]
    assert employees["shares"] == pytest.approx([known / 10] * 10, abs=0.002)
    assert ref["score"]["shares"] == pytest.approx([0.1] * 10, abs=0.002)


def test_bin_strings_read_back_as_the_bins(ref: dict) -> None:
    leads = pd.DataFrame({"industry": ["retail", None, "mining", "software"],
                          "employees": [1.0, np.nan, 1e9, ref["fields"][1]["edges"][3]]})
    binner = reference.InputBinner(ref, ["industry", "employees"])
    numbers = np.column_stack([np.full(4, np.nan), leads["employees"].to_numpy()])
    rows = binner.encode(numbers, {"industry": leads["industry"].tolist()})
    assert rows == ["10", "..", "?9", "04"]  # value on an edge: the bin above it
    codes = reference.codes_of(np.frombuffer("".join(rows).encode(), np.uint8).reshape(4, 2))
    assert codes[:, 0].tolist() == [1, -1, -2, 0]


def test_psi_is_zero_on_the_reference_and_large_on_a_shift(ref: dict) -> None:
    expected = np.array([0.5, 0.3, 0.2])
    assert drift.psi(expected * 1000, expected) == pytest.approx(0)
    shifted = np.array([0.1, 0.3, 0.6])
    by_hand = sum((a - e) * np.log(a / e) for a, e in zip(shifted, expected, strict=True))
    assert drift.psi(shifted, expected) == pytest.approx(by_hand)
    assert drift.psi(np.array([1.0, 0, 0]), expected) > 1  # empty bins: floored, finite


def _drift_of(ref: dict, features: pd.DataFrame, probability: np.ndarray) -> dict:
    binner = reference.InputBinner(ref, ["industry", "employees"])
    numbers = np.column_stack([np.full(len(features), np.nan), features["employees"]])
    rows = binner.encode(numbers, {"industry": features["industry"].tolist()})
    matrix = np.frombuffer("".join(rows).encode(), np.uint8).reshape(len(rows), 2)
    counts = np.stack([np.bincount(matrix[:, j], minlength=256) for j in range(2)])
    now = pd.Timestamp("2025-02-01", tz="UTC")
    return drift.version_drift(ref, {2: counts}, probability, 0, now)


def test_the_same_population_raises_no_alert_and_a_shifted_mix_does(ref: dict) -> None:
    settings = MonitoringConfig()
    same = _drift_of(ref, _features(3000, MIX, RNG), RNG.random(3000))
    assert drift.alerts({"m/1": same}, {}, settings) == []
    assert max(f["psi"] for f in same["inputs"]) < settings.psi_watch
    shifted_mix = {"software": 0.1, "retail": 0.2, "education": 0.7}
    shifted = _drift_of(ref, _features(3000, shifted_mix, RNG), RNG.random(3000))
    found = drift.alerts({"m/1": shifted}, {}, settings)
    assert [(a["kind"], a["field"]) for a in found] == [("input_drift", "industry")]


def test_unknown_categories_and_staleness_raise_alerts(ref: dict) -> None:
    features = _features(2000, MIX, RNG)
    features.loc[:199, "industry"] = "mining"  # about 10% of the known values
    found = _drift_of(ref, features, RNG.random(2000))
    industry = next(f for f in found["inputs"] if f["field"] == "industry")
    known = features["industry"].notna().sum()
    assert industry["unknown_share"] == pytest.approx(200 / known, abs=1e-6)
    assert found["days_since_training"] == 31
    strict = MonitoringConfig(max_model_age_days=30, max_data_age_days=60)
    kinds = {a["kind"] for a in drift.alerts({"m/1": found}, {}, strict)}
    assert {"unknown_categories", "days_since_training", "days_since_training_data"} <= kinds


def _funnel() -> tuple[pd.DataFrame, pd.DataFrame]:
    day = pd.Timestamp("2025-01-01", tz="UTC")
    changes = pd.DataFrame({"lead_id": ["a", "b", "c", "c"],
                            "stage": ["customer", "mql", "mql", "customer"],
                            "timestamp": [day + pd.Timedelta(days=d) for d in (20, 5, 5, 200)]})
    rows = pd.DataFrame({
        "request_id": ["r1", "r1", "r1", "r2", "r2", "r2", "r2"],
        "lead_id": ["a", "b", "c", "a", "zz", "d", "d"],
        "moment": [day, day, day, day + pd.Timedelta(days=30), day, day + pd.Timedelta(days=100),
                   day + pd.Timedelta(days=100)],
        "model_version": ["1"] * 7})
    return rows, changes


def test_matured_pending_and_the_rest_are_told_apart() -> None:
    rows, changes = _funnel()
    data_end = pd.Timestamp("2025-05-01", tz="UTC")  # day 120: horizon 90 from day 100 is open
    judged = outcomes.outcomes(rows, pd.Series(["a", "b", "c", "d"]), changes,
                               Stage.CUSTOMER, 90, data_end)
    assert judged["status"].tolist() == ["matured", "matured", "matured", "already_converted",
                                         "unknown_lead", "pending", "duplicate"]
    # a: customer on day 20 (within 90 days); b never; c only on day 200 (too late)
    assert judged["label"].tolist()[:3] == [1, 0, 0]
    assert judged["label"].iloc[3:].isna().all()  # pending and the rest: no label at all


def test_periods_list_every_week_and_month() -> None:
    moments = pd.Series(pd.to_datetime(["2025-03-02T23:00:00Z", "2025-03-03T00:00:00Z"]))
    assert metrics.periods_of(moments, "week").tolist() == ["2025-02-24", "2025-03-03"]
    assert metrics.periods_of(moments, "month").tolist() == ["2025-03", "2025-03"]
    assert metrics.period_range(pd.Timestamp("2025-01-15", tz="UTC"),
                                pd.Timestamp("2025-04-01", tz="UTC"), "month") == [
        "2025-01", "2025-02", "2025-03", "2025-04"]


OLD_TABLE = """CREATE TABLE lead_predictions (
    id INTEGER PRIMARY KEY, scored_at DATETIME NOT NULL, request_id VARCHAR(64) NOT NULL,
    lead_id VARCHAR(256) NOT NULL, as_of DATETIME, probability FLOAT NOT NULL,
    score INTEGER NOT NULL, suggested_stage VARCHAR(32) NOT NULL, rule_points FLOAT NOT NULL,
    rule_stage VARCHAR(32), model_name VARCHAR(256) NOT NULL,
    model_version VARCHAR(64) NOT NULL)"""


def _old_log(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(OLD_TABLE)
        connection.exec_driver_sql(
            "INSERT INTO lead_predictions (scored_at, request_id, lead_id, as_of, probability,"
            " score, suggested_stage, rule_points, rule_stage, model_name, model_version) "
            "VALUES ('2025-03-01 10:00:00.000000', 'r1', 'a', '2025-03-01 00:00:00.000000', "
            "0.25, 25, 'mql', 16, 'lead', 'm', '1')")
    engine.dispose()
    return url


def test_old_log_rows_read_before_and_after_the_columns_are_added(tmp_path: Path) -> None:
    url = _old_log(tmp_path / "old.db")
    before = log.read_log(url)
    assert before.rows["lead_id"].tolist() == ["a"] and not before.has_bins_column
    assert before.without_bins == {("m", "1"): 1}
    engine = create_log_engine(url)  # the service opening the old table adds the columns
    columns = {c["name"] for c in sa.inspect(engine).get_columns("lead_predictions")}
    engine.dispose()
    assert set(ADDED_COLUMNS) <= columns
    after = log.read_log(url)
    assert after.rows["probability"].tolist() == [0.25] and after.has_bins_column
    assert after.rows["moment"].iloc[0] == pd.Timestamp("2025-03-01", tz="UTC")
    assert after.rows["fit_grade"].isna().all()


def test_a_log_that_is_not_one_is_named(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    sa.create_engine(url).connect().close()
    with pytest.raises(log.LogError, match="no 'lead_predictions' table"):
        log.read_log(url)
    with pytest.raises(log.LogError, match="not a database URL"):
        log.read_log("nosuchdialect://x")


def test_the_window_selects_by_the_moment_scored(tmp_path: Path) -> None:
    url = _old_log(tmp_path / "old.db")
    inside = log.read_log(url, since=datetime(2025, 3, 1, tzinfo=UTC),
                          until=datetime(2025, 3, 2, tzinfo=UTC))
    outside = log.read_log(url, since=datetime(2025, 3, 2, tzinfo=UTC))
    assert len(inside.rows) == 1 and outside.rows.empty


def test_an_empty_log_gives_a_report_with_every_period_named_empty(tmp_path: Path) -> None:
    from predictive_scoring.cli.monitor import to_json
    from predictive_scoring.monitoring.html import write_report
    from predictive_scoring.monitoring.report import MonitorPlan, Outcomes, monitoring_report

    url = f"sqlite:///{tmp_path}/empty.db"
    create_log_engine(url).dispose()
    plan = MonitorPlan(Stage.CUSTOMER, 90, Stage.MQL, 10, "month",
                       pd.Timestamp("2025-01-01", tz="UTC"), pd.Timestamp("2025-03-01", tz="UTC"),
                       MonitoringConfig(), pd.Timestamp("2025-06-01", tz="UTC"))
    _, changes = _funnel()
    report, rows = monitoring_report(log.read_log(url), Outcomes(
        pd.Series(["a"]), changes, pd.Timestamp("2025-06-01", tz="UTC")), {}, plan)
    assert (report["n_scored"], report["n_leads"], report["n_pending"]) == (0, 0, 0)
    assert report["problems"]["empty_periods"]["periods"] == ["2025-01", "2025-02"]
    assert report["model"]["roc_auc"] is None and report["alerts"] == []
    assert '"roc_auc": null' in to_json(report)
    page, drawn = write_report(report, rows, tmp_path)
    assert page.exists() and len(drawn) == 3


def test_a_bundle_without_a_reference_has_drift_unavailable() -> None:
    found = drift.version_drift(None, {}, np.array([0.1]), 1, pd.Timestamp.now(tz="UTC"))
    assert found["available"] is False and "no training reference" in found["reason"]
    assert drift.alerts({"m/1": found}, {}, MonitoringConfig()) == []


def test_the_thresholds_are_validated_in_the_base_config(tmp_path: Path) -> None:
    from predictive_scoring.config import BaseConfig, ConfigError, load_config
    from tests.conftest import REPO

    text = (REPO / "configs/base.yaml").read_text()
    assert load_config(REPO / "configs/base.yaml", BaseConfig).monitoring.psi_alert == 0.25
    bad = tmp_path / "base.yaml"
    bad.write_text(text.replace("psi_watch: 0.1", "psi_watch: 0.5"))
    with pytest.raises(ConfigError, match="psi_watch"):
        load_config(bad, BaseConfig)
    bad.write_text(text.replace("min_matured: 200", "min_matured: 200\n  psi_limit: 1"))
    with pytest.raises(ConfigError, match="psi_limit"):
        load_config(bad, BaseConfig)
