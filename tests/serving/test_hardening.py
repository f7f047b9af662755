"""Inputs that used to answer 500, numbers the API refuses, where errors point, and what a
refused or failed request leaves in the metrics and the prediction log."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.serving.conftest import AUTH, settings_for, wait_ready

DEEP = "[" * 1000 + "]" * 1000
"""About 2 KB of JSON nested 1,000 deep."""


def _with_attribute(lead: dict[str, Any], name: str, raw_json: str) -> bytes:
    """The lead's JSON with one attribute's value written verbatim (numbers JSON libraries
    would not write: 400 digits, 1e999, deep nesting)."""
    marker = "__VALUE__"
    body = json.dumps(lead | {"attributes": lead["attributes"] | {name: marker}})
    return body.replace(f'"{marker}"', raw_json).encode()


def _batch_body(leads: list[bytes]) -> bytes:
    return b'{"leads": [' + b", ".join(leads) + b"]}"


def _post(client: TestClient, path: str, body: bytes, **params: Any) -> Any:
    return client.post(path, content=body, params=params,
                       headers=AUTH | {"content-type": "application/json"})


BAD_VALUES = [
    pytest.param("employees", "1" * 400, "beyond the range of numbers", id="400-digit-integer"),
    pytest.param("industry", str(2**64), "beyond 64 bits", id="2**64-category"),
    pytest.param("employees", DEEP, "nested", id="nested-1000-deep"),
    pytest.param("employees", "1e999", "out of range", id="json-1e999"),
    pytest.param("employees", '"Infinity"', "finite number", id="text-Infinity"),
    pytest.param("employees", '"-inf"', "finite number", id="text-minus-inf"),
    pytest.param("employees", '"1e999"', "finite number", id="text-1e999"),
    pytest.param("employees", '"nan"', "finite number", id="text-nan"),
    pytest.param("employees", "-5", "must be >= 0", id="below-the-range"),
    pytest.param("employees", '"-5"', "must be >= 0", id="text-below-the-range"),
]


@pytest.mark.parametrize(("name", "value", "reason"), BAD_VALUES)
def test_a_bad_attribute_alone_is_a_422_naming_it(client: TestClient,
                                                  requests_json: list[dict], name: str,
                                                  value: str, reason: str) -> None:
    answer = _post(client, "/v1/score", _with_attribute(requests_json[0], name, value),
                   reasons="true")
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["loc"] == ["body", "attributes", name]
    assert reason in detail["msg"]


@pytest.mark.parametrize(("name", "value", "reason"), BAD_VALUES)
def test_a_bad_attribute_in_a_batch_is_that_leads_error(client: TestClient,
                                                        requests_json: list[dict], name: str,
                                                        value: str, reason: str) -> None:
    good = [json.dumps(lead).encode() for lead in requests_json[:2]]
    bad = _with_attribute(requests_json[2], name, value)
    answer = _post(client, "/v1/score/batch", _batch_body([good[0], bad, good[1]]),
                   reasons="true")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["scored"], body["failed"]) == (2, 1)
    assert [r["status"] for r in body["results"]] == ["scored", "error", "scored"]
    error = body["results"][1]
    assert error["index"] == 1
    assert error["errors"][0]["field"] == f"attributes.{name}"
    assert reason in error["errors"][0]["reason"]


def test_in_range_and_numeric_text_score_as_numbers(client: TestClient,
                                                    requests_json: list[dict]) -> None:
    lead = requests_json[0]
    as_number = _post(client, "/v1/score", _with_attribute(lead, "employees", "0")).json()
    as_text = _post(client, "/v1/score", _with_attribute(lead, "employees", '" 0.0e0 "')).json()
    assert as_number["probability"] == as_text["probability"]
    blank = _post(client, "/v1/score", _with_attribute(lead, "employees", '"  "')).json()
    missing = _post(client, "/v1/score", _with_attribute(lead, "employees", "null")).json()
    assert blank["probability"] == missing["probability"]


def test_nesting_outside_the_attributes_names_the_field(client: TestClient,
                                                        requests_json: list[dict]) -> None:
    body = json.dumps(requests_json[0] | {"crm": "__VALUE__"}).replace('"__VALUE__"', DEEP)
    answer = _post(client, "/v1/score", body.encode())
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "crm"]
    batch = _post(client, "/v1/score/batch", _batch_body(
        [body.encode(), json.dumps(requests_json[1]).encode()])).json()
    assert [r["status"] for r in batch["results"]] == ["error", "scored"]


def test_timestamps_out_of_range_are_named(client: TestClient,
                                           requests_json: list[dict]) -> None:
    lead = requests_json[0] | {"as_of": "2262-01-01T00:00:00Z"}
    answer = client.post("/v1/score", json=lead, headers=AUTH)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "as_of"]
    assert "1678 to 2261" in answer.json()["detail"][0]["msg"]
    # the last moment of 2261 in a far-west offset is 2262 in UTC: still read
    late = requests_json[0] | {"as_of": "2261-12-31T23:59:59-12:00"}
    assert client.post("/v1/score", json=late, headers=AUTH).status_code == 200


def _metric(text: str, name: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(name)]
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def test_a_413_is_counted_under_its_route(registry: str, requests_json: list[dict]) -> None:
    with TestClient(create_app(settings_for(registry, max_body_bytes=2_000))) as small:
        wait_ready(small)
        answer = small.post("/v1/score/batch", json={"leads": requests_json[:20]},
                            headers=AUTH)
        metrics = small.get("/metrics").text
    assert answer.status_code == 413
    assert _metric(metrics, 'scoring_http_requests_total{method="POST",'
                            'route="/v1/score/batch",status="413"}') == 1
    assert 'route="unmatched"' not in metrics
