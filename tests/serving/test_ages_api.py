"""The API marks a lead older than any lead the model was trained on."""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd
from fastapi.testclient import TestClient

from tests.serving.conftest import AUTH, Trained


def _aged(lead: dict[str, Any], days: float) -> dict[str, Any]:
    """The lead scored ``days`` after its creation (its events as they were)."""
    aged = copy.deepcopy(lead)
    created = pd.Timestamp(lead["created_at"])
    aged["as_of"] = (created + pd.Timedelta(days=days)).isoformat()
    aged["events"] = [e for e in lead["events"]
                      if pd.Timestamp(e["timestamp"]) < pd.Timestamp(aged["as_of"])]
    return aged


def test_a_lead_older_than_any_trained_age_is_marked(client: TestClient, trained: Trained,
                                                     requests_json: list[dict]) -> None:
    oldest = trained.scorer.metadata["trained_ages_days"][1]
    lead = requests_json[0]
    ages = [1.0, oldest / 2, oldest, oldest + 1, oldest + 400]
    batch = client.post("/v1/score/batch", headers=AUTH,
                        json={"leads": [_aged(lead, age) for age in ages]})
    assert batch.status_code == 200, batch.text
    marks = [result["age_beyond_training"] for result in batch.json()["results"]]
    assert marks == [False, False, False, True, True]
    single = client.post("/v1/score", headers=AUTH, json=_aged(lead, oldest + 30))
    assert single.status_code == 200 and single.json()["age_beyond_training"] is True
    model = client.get("/v1/model", headers=AUTH).json()
    assert model["trained_ages_days"] == trained.scorer.metadata["trained_ages_days"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "age_beyond_training" in schema["ScoreOut"]["properties"]
