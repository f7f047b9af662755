"""The API through TestClient: every endpoint, the CRM's realities and every error case."""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from predictive_scoring.config import ReadOptions
from predictive_scoring.predict import score_file
from serving.app import create_app
from tests.serving.conftest import (
    ADMIN,
    API_KEY,
    AUTH,
    MODEL_NAME,
    Trained,
    settings_for,
    wait_ready,
)


def _batch(client: TestClient, leads: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    answer = client.post("/v1/score/batch", json={"leads": leads}, headers=AUTH,
                         params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _score(client: TestClient, lead: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/v1/score", json=lead, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return answer.json()


# ------------------------------------------------------------------ same scores as batch
def test_api_and_batch_scoring_give_identical_scores(client: TestClient, trained: Trained,
                                                     requests_json: list[dict],
                                                     tmp_path: Path) -> None:
    leads = trained.leads.head(len(requests_json))
    events = trained.dataset.events
    events = events.loc[events["lead_id"].isin(leads["lead_id"])]
    expected = trained.scorer.score(leads, events)
    leads.to_csv(tmp_path / "leads.csv", index=False)
    score_file(trained.scorer, tmp_path / "leads.csv", events, pd.Timestamp.now(tz="UTC"),
               tmp_path / "scores.csv", 1000, ReadOptions())
    from_file = pd.read_csv(tmp_path / "scores.csv")

    batch = _batch(client, requests_json)["results"]
    single = [_score(client, lead) for lead in requests_json[:20]]

    probability = np.array([r["probability"] for r in batch])
    np.testing.assert_array_equal(probability, expected["probability"].to_numpy())
    np.testing.assert_array_equal(probability, from_file["probability"].to_numpy())
    assert [r["score"] for r in batch] == expected["score"].tolist()
    assert [r["suggested_stage"] for r in batch] == expected["suggested_stage"].tolist()
    np.testing.assert_array_equal([r["rules"]["points"] for r in batch],
                                  expected["rule_points"].to_numpy())
    assert [r["rules"]["stage"] for r in batch] == expected["rule_stage"].tolist()
    assert [r["probability"] for r in single] == probability[:20].tolist()


def test_scores_spread_over_leads(client: TestClient, requests_json: list[dict]) -> None:
    """Leads get different scores: a quarter as many values as leads, or, when the model's
    calibration is isotonic (a step function chosen on the validation slice), at least
    half of its steps."""
    probabilities = [r["probability"] for r in _batch(client, requests_json)["results"]]
    calibrator = client.app.state.slot.current.scorer.calibrator
    wanted = len(probabilities) // 4
    if calibrator.method == "isotonic":
        wanted = min(wanted, len(set(calibrator.fitted.y_thresholds_)) // 2)
    assert len(set(probabilities)) > max(wanted, 1)
    assert all(0 <= p <= 1 for p in probabilities)


def test_fired_rules_add_up_to_the_points(client: TestClient,
                                          requests_json: list[dict]) -> None:
    for result in _batch(client, requests_json)["results"]:
        fired = sum(rule["points"] for rule in result["rules"]["fired"])
        assert fired == pytest.approx(result["rules"]["points"], abs=1e-9)


# ------------------------------------------------------------------ the CRM's realities
def test_sparse_record_unknown_category_and_extra_fields(client: TestClient,
                                                         requests_json: list[dict]) -> None:
    lead = copy.deepcopy(requests_json[0])
    sparse = _score(client, lead | {"attributes": {}})
    unknown = _score(client, lead | {"attributes": {"industry": "quantum_computing"},
                                     "hubspot_owner_id": "123"})
    extra = _score(client, lead | {"attributes": lead["attributes"] | {"favourite_colour": "red"}})
    assert sparse["probability"] == unknown["probability"]  # unseen category = unknown
    assert sparse["ignored_fields"] == []
    assert set(unknown["ignored_fields"]) == {"hubspot_owner_id"}
    assert extra["ignored_fields"] == ["favourite_colour"]
    assert extra["probability"] == _score(client, lead)["probability"]


def test_the_same_instant_in_any_offset_scores_the_same(client: TestClient,
                                                        requests_json: list[dict]) -> None:
    lead = requests_json[1]
    as_of = pd.Timestamp(lead["as_of"])
    shifted = lead | {"as_of": as_of.tz_convert("Asia/Kolkata").isoformat(),
                      "events": [e | {"timestamp": pd.Timestamp(e["timestamp"]).tz_convert(
                          "America/Los_Angeles").isoformat()} for e in lead["events"]]}
    naive = lead | {"as_of": as_of.tz_convert("UTC").tz_localize(None).isoformat()}
    reference = _score(client, lead)
    assert _score(client, shifted)["probability"] == reference["probability"]
    assert _score(client, naive)["probability"] == reference["probability"]
    assert reference["as_of"] == as_of.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def test_events_at_or_after_as_of_do_not_count(client: TestClient,
                                               requests_json: list[dict]) -> None:
    lead = requests_json[2]
    later = [{"timestamp": lead["as_of"], "event_type": "demo_request"},
             {"timestamp": (pd.Timestamp(lead["as_of"]) + pd.Timedelta(days=3)).isoformat(),
              "event_type": "demo_request"}]
    assert (_score(client, lead | {"events": lead["events"] + later})["probability"]
            == _score(client, lead)["probability"])


def test_a_demo_request_raises_the_score_and_fires_its_rule(client: TestClient,
                                                            requests_json: list[dict]) -> None:
    leads = requests_json[:40]
    with_demo = [lead | {"events": [*lead["events"], {
        "timestamp": (pd.Timestamp(lead["as_of"]) - pd.Timedelta(hours=2)).isoformat(),
        "event_type": "demo_request"}]} for lead in leads]
    before = _batch(client, leads)["results"]
    after = _batch(client, with_demo)["results"]
    raised = [a["probability"] > b["probability"] for a, b in zip(after, before, strict=True)]
    assert np.mean(raised) > 0.5  # a small test model: most leads, not all
    assert (np.mean([a["probability"] for a in after])
            > 1.2 * np.mean([b["probability"] for b in before]))
    assert all(a["rules"]["points"] > b["rules"]["points"]
               for a, b in zip(after, before, strict=True))
    assert all("demo_request" in {rule["rule"] for rule in a["rules"]["fired"]} for a in after)


def test_default_as_of_is_now(client: TestClient, requests_json: list[dict]) -> None:
    lead = {k: v for k, v in requests_json[0].items() if k != "as_of"}
    answer = _score(client, lead)
    assert abs(pd.Timestamp(answer["as_of"]) - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(
        minutes=5)


# ------------------------------------------------------------------ batch errors
def test_a_bad_lead_gets_its_own_error_and_the_others_are_scored(
        client: TestClient, requests_json: list[dict]) -> None:
    good = requests_json[:2]
    not_a_number = good[0] | {"lead_id": "bad-number",
                              "attributes": good[0]["attributes"] | {"employees": "lots"}}
    bad_time = good[0] | {"lead_id": "bad-time", "created_at": "yesterday"}
    too_late = good[0] | {"lead_id": "too-late",
                          "created_at": (pd.Timestamp(good[0]["as_of"])
                                         + pd.Timedelta(days=1)).isoformat()}
    body = _batch(client, [good[0], not_a_number, bad_time, too_late, good[1]])
    assert (body["scored"], body["failed"]) == (2, 3)
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["scored", "error", "error", "error", "scored"]
    errors = {r["lead_id"]: r for r in body["results"] if r["status"] == "error"}
    assert errors["bad-number"]["index"] == 1
    assert errors["bad-number"]["errors"][0]["field"] == "attributes.employees"
    assert "lots" in errors["bad-number"]["errors"][0]["reason"]
    assert errors["bad-time"]["errors"][0]["field"] == "created_at"
    assert errors["too-late"]["errors"][0]["reason"].startswith("is after as_of")
    alone = _score(client, good[1])
    assert body["results"][4]["probability"] == alone["probability"]


def test_one_bad_lead_alone_is_a_422_naming_the_field(client: TestClient,
                                                      requests_json: list[dict]) -> None:
    lead = requests_json[0] | {"attributes": {"employees": [1, 2]}}
    answer = client.post("/v1/score", json=lead, headers=AUTH)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "attributes", "employees"]
    missing = {k: v for k, v in requests_json[0].items() if k != "created_at"}
    answer = client.post("/v1/score", json=missing, headers=AUTH)
    assert answer.status_code == 422
    assert "created_at" in answer.json()["detail"][0]["loc"]


def test_malformed_json_is_422_without_internals(client: TestClient) -> None:
    answer = client.post("/v1/score", content=b'{"lead_id": ', headers=AUTH | {
        "content-type": "application/json"})
    assert answer.status_code == 422
    assert "Traceback" not in answer.text
    assert answer.json()["request_id"]


# ------------------------------------------------------------------ limits
def test_batch_and_event_limits_are_422_with_the_setting_named(
        registry: str, requests_json: list[dict]) -> None:
    settings = settings_for(registry, max_batch_leads=3, max_events_per_lead=2)
    with TestClient(create_app(settings)) as small:
        wait_ready(small)
        answer = small.post("/v1/score/batch", json={"leads": requests_json[:4]},
                            headers=AUTH)
        assert answer.status_code == 422
        assert "PREDICTIVE_SCORING_MAX_BATCH_LEADS" in answer.json()["detail"][0]["msg"]
        busy = next(lead for lead in requests_json if len(lead["events"]) > 2)
        answer = small.post("/v1/score", json=busy, headers=AUTH)
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["body", "events"]


def test_a_body_over_the_limit_is_413(registry: str, requests_json: list[dict]) -> None:
    with TestClient(create_app(settings_for(registry, max_body_bytes=2_000))) as small:
        wait_ready(small)
        answer = small.post("/v1/score/batch", json={"leads": requests_json[:20]},
                            headers=AUTH)
        assert answer.status_code == 413
        assert "PREDICTIVE_SCORING_MAX_BODY_BYTES" in answer.json()["detail"]

        def chunks():  # no content-length: the limit holds while streaming too
            yield b'{"leads": ['
            yield b'{"lead_id": "x"},' * 300
            yield b'{"lead_id": "y"}]}'

        answer = small.post("/v1/score/batch", content=chunks(), headers=AUTH | {
            "content-type": "application/json"})
        assert answer.status_code == 413


# ------------------------------------------------------------------ security
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong-key-0123456789"},
                                     {"Authorization": "Bearer wrong-key-0123456789"},
                                     {"Authorization": f"Basic {API_KEY}"}])
def test_scoring_needs_a_valid_key(client: TestClient, requests_json: list[dict],
                                   headers: dict[str, str]) -> None:
    answer = client.post("/v1/score", json=requests_json[0], headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/model", headers=headers).status_code == 401


def test_bearer_and_admin_keys_score_too(client: TestClient, requests_json: list[dict]) -> None:
    bearer = {"Authorization": f"Bearer {API_KEY}"}
    assert client.post("/v1/score", json=requests_json[0], headers=bearer).status_code == 200
    assert client.post("/v1/score", json=requests_json[0], headers=ADMIN).status_code == 200


def test_reload_needs_the_admin_key(client: TestClient) -> None:
    assert client.post("/v1/admin/reload").status_code == 401
    forbidden = client.post("/v1/admin/reload", headers=AUTH)
    assert forbidden.status_code == 403
    assert "admin" in forbidden.json()["detail"]


def test_health_ready_and_metrics_need_no_key(client: TestClient) -> None:
    assert client.get("/health").json() == {
        "status": "ok", "model": {"name": MODEL_NAME, "version": "1"}, "reason": None,
        "prediction_log": None}
    ready = client.get("/ready").json()
    assert ready["status"] == "ready"
    assert ready["model"] == {"name": MODEL_NAME, "version": "1"}
    assert client.get("/metrics").status_code == 200


def test_an_internal_error_answers_500_without_internals(
        client: TestClient, requests_json: list[dict], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(leads: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(client.app.state.slot.current.online, "score", broken)
    as_server = TestClient(client.app, raise_server_exceptions=False)
    answer = as_server.post("/v1/score", json=requests_json[0], headers=AUTH)
    assert answer.status_code == 500
    assert "secret" not in answer.text and "Traceback" not in answer.text
    assert answer.json()["request_id"] == answer.headers["x-request-id"]


# ------------------------------------------------------------------ observability
class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_one_structured_log_line_per_request_without_keys(client: TestClient,
                                                          requests_json: list[dict]) -> None:
    from serving.observability import JsonLines

    records = _Records()
    records.setFormatter(JsonLines())
    access = logging.getLogger("serving.access")
    access.addHandler(records)
    try:
        client.post("/v1/score", json=requests_json[0],
                    headers=AUTH | {"X-Request-ID": "crm-call-42"})
        client.post("/v1/score/batch", json={"leads": requests_json[:3]}, headers=ADMIN)
        client.post("/v1/score", json=requests_json[0], headers={"X-API-Key": "not-a-key"})
    finally:
        access.removeHandler(records)
    assert len(records.lines) == 3
    import json

    first, batch, refused = (json.loads(line) for line in records.lines)
    assert first["request_id"] == "crm-call-42"
    assert first["route"] == "/v1/score" and first["status"] == 200
    assert first["lead_ids"] == [requests_json[0]["lead_id"]]
    assert first["model_version"] == "1" and first["duration_ms"] > 0
    assert batch["leads"] == 3 and refused["status"] == 401
    text = "\n".join(records.lines)
    assert API_KEY not in text and "test-admin-key" not in text and "not-a-key" not in text
    assert "software" not in text  # no attributes, only lead ids


def test_metrics_count_requests_scores_and_the_model(client: TestClient,
                                                     requests_json: list[dict]) -> None:
    def value(text: str, prefix: str) -> float:
        lines = [line for line in text.splitlines() if line.startswith(prefix)]
        return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0

    before = client.get("/metrics").text
    _batch(client, requests_json[:5])
    after = client.get("/metrics").text
    scored = 'scoring_leads_total{outcome="scored"}'
    assert value(after, scored) - value(before, scored) == 5
    count = 'scoring_lead_score_count{model_version="1"}'
    assert value(after, count) - value(before, count) == 5
    requests = ('scoring_http_requests_total{method="POST",route="/v1/score/batch",'
                'status="200"}')
    assert value(after, requests) - value(before, requests) == 1
    assert f'scoring_model_info{{name="{MODEL_NAME}",version="1"}} 1.0' in after
    assert 'scoring_http_request_duration_seconds_bucket{le="0.005",route="/v1/score/batch"}' \
        in after


# ------------------------------------------------------------------ model metadata
def test_model_metadata(client: TestClient, trained: Trained) -> None:
    meta = client.get("/v1/model", headers=AUTH).json()
    scorer = trained.scorer
    assert (meta["name"], meta["version"], meta["alias"]) == (MODEL_NAME, "1", "champion")
    assert meta["fast_path"] is True and meta["model_kind"] == "lightgbm"
    assert meta["trained_at"] == scorer.metadata["trained_at"]
    assert meta["test_metrics"]["roc_auc"] == pytest.approx(
        scorer.metadata["test_metrics"]["roc_auc"])
    assert [f["name"] for f in meta["features"]] == scorer.columns.all
    assert {f["group"] for f in meta["features"]} == {"fit", "engagement"}
    assert meta["stage_thresholds"] == {str(k): v for k, v in scorer.stage_thresholds.items()}
    assert meta["rules"]["name"] == scorer.rules.name
    assert meta["raw_fields"] == scorer.raw_attributes()


def test_not_ready_until_a_model_loads(registry: str, requests_json: list[dict]) -> None:
    settings = settings_for(registry, model_uri=f"models:/{MODEL_NAME}@no_such_alias")
    with TestClient(create_app(settings)) as broken:
        for _ in range(200):
            ready = broken.get("/ready")
            if ready.json()["status"] == "failed":
                break
        assert ready.status_code == 503
        assert "no_such_alias" in ready.json()["reason"]
        assert broken.get("/health").status_code == 200
        answer = broken.post("/v1/score", json=requests_json[0], headers=AUTH)
        assert answer.status_code == 503
        assert "no model loaded" in answer.json()["detail"]


def test_each_worker_follows_the_champion_when_asked(registry: str) -> None:
    from predictive_scoring.tracking import registry as model_registry

    settings = settings_for(registry, reload_check_seconds=0.2)
    with TestClient(create_app(settings)) as following:
        wait_ready(following)
        assert following.get("/ready").json()["model"]["version"] == "1"
        model_registry.set_alias(MODEL_NAME, model_registry.CHAMPION, "2")
        try:
            versions = []
            for _ in range(300):
                versions.append(following.get("/ready").json()["model"]["version"])
                if versions[-1] == "2":
                    break
                time.sleep(0.1)
        finally:
            model_registry.set_alias(MODEL_NAME, model_registry.CHAMPION, "1")
        assert versions[-1] == "2"
        metrics = following.get("/metrics").text
        assert f'scoring_model_info{{name="{MODEL_NAME}",version="2"}} 1.0' in metrics
        assert 'version="1"' not in metrics.split("scoring_model_info")[-1]


def test_reasons_fit_and_engagement_match_batch_explanations(
        client: TestClient, trained: Trained, requests_json: list[dict]) -> None:
    from predictive_scoring.explain import reason_columns, score_explained

    leads = trained.leads.head(60)
    events = trained.dataset.events
    events = events.loc[events["lead_id"].isin(leads["lead_id"])]
    k = client.app.state.settings.reasons
    expected = score_explained(trained.scorer, leads, events, k)
    results = _batch(client, requests_json[:60])["results"]
    assert [r["fit_grade"] for r in results] == expected["fit_grade"].tolist()
    assert [r["engagement"] for r in results] == expected["engagement"].tolist()
    assert [r["quadrant"] for r in results] == expected["quadrant"].tolist()
    for result, (_, row) in zip(results, expected.iterrows(), strict=True):
        ups = [r["sentence"] for r in result["reasons"] if r["effect"] > 0]
        downs = [r["sentence"] for r in result["reasons"] if r["effect"] < 0]
        want = [None if pd.isna(row[c]) else row[c] for c in reason_columns(k)]
        assert ups + [None] * (k - len(ups)) + downs + [None] * (k - len(downs)) == want
    assert any(result["reasons"] for result in results)
    bare = _batch(client, requests_json[:5], reasons="false")["results"]
    assert all(r["reasons"] is None for r in bare)
    for key in ("probability", "fit_grade", "engagement", "quadrant"):  # kept: cheap
        assert [r[key] for r in bare] == [r[key] for r in results[:5]]
